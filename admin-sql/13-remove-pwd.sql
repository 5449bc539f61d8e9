-- New logins as this user are refused; open sessions stay.
REMOVE PWD report;
SELECT * FROM pwds;
