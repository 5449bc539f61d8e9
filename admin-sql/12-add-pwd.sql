-- Add a client account (user:password, split at the first colon). The
-- same account must exist on the backends.
ADD PWD report:report_pw;
SELECT * FROM pwds;
ADD PWD report:other;
