-- Bring it back. It goes to `unknown` and the health check decides when
-- it is `up` again (the state shown depends on when you look).
SET ONLINE 2;
SELECT * FROM backends;
