-- The running configuration; passwords are hidden.
SELECT * FROM config;
