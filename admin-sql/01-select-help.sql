-- Every admin command with a one-line description.
SELECT * FROM help;
