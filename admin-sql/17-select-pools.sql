-- Backend connection pools, summed per backend.
SELECT * FROM pools;
