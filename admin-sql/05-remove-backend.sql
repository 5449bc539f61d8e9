-- Remove backend 3. Running statements finish; its pools drain and close.
REMOVE BACKEND 3;
SELECT * FROM backends;
-- backend_ndx refers to the current list; an index out of range is an error.
REMOVE BACKEND 9;
