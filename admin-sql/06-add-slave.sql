-- Add a read-only backend: host:port, optionally @weight (1..1000).
-- Host names and IPv6 ([::1]:3306) work too.
ADD SLAVE {REPLICA2}@2;
-- An address that is already listed is refused.
ADD SLAVE {REPLICA2};
SELECT * FROM backends;
