-- Anything else is an error that points to the help table.
SHOW DATABASES;
