-- How far an upload got, so a dead writer's claim is taken over at once when nothing of it
-- can have reached Basware: `sent_at` is set just before the PDF's PUT (from then on the
-- document may exist), `bum_id` as soon as the PUT is answered (it does). `looked_at` is
-- the last lookup of an unconfirmed upload in Basware, so lookups are paced.
ALTER TABLE writer_uploads ADD COLUMN sent_at timestamptz, ADD COLUMN looked_at timestamptz;
