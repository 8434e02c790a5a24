-- Whether the version of a code Basware accepted last is active: an invoice naming an inactive
-- code is not uploaded (docs/basware-p2p.md §10.9).
ALTER TABLE writer_accepted ADD COLUMN active boolean NOT NULL DEFAULT true;
