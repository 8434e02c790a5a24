"""One module per page: its HTML routes and the JSON API routes that answer the same."""
