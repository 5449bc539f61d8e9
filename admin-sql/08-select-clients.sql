-- The client-ips allowlist; empty means every client may connect.
SELECT * FROM clients;
