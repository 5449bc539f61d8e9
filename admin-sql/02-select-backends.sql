-- The backends: Atlas's four columns (backend_ndx, address, state, type),
-- then Gantry's (weight, reason, lag in seconds, open connections).
SELECT * FROM backends;
-- \G works as in any MySQL client.
SELECT * FROM backends\G
