-- Client accounts. Passwords are never shown.
SELECT * FROM pwds;
