-- Add a read/write backend (no weight). Writes go to the first rw backend
-- that is up.
ADD MASTER [2001:db8::10]:3306;
SELECT * FROM backends;
REMOVE BACKEND 4;
