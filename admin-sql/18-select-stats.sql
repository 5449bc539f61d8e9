-- Statements routed to each backend, then the totals.
SELECT * FROM stats;
