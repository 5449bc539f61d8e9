-- Client sessions of the proxy port: the backend each one holds, whether it
-- is in a transaction and why it is pinned to its backend connection.
SELECT * FROM sessions;
