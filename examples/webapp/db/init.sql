-- Run once, by the postgres image's entrypoint, on an empty data volume.
CREATE TABLE guests (name text PRIMARY KEY);
INSERT INTO guests VALUES ('ada'), ('grace');
