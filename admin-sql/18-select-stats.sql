-- Statements routed to each backend, then the totals, then how reads under
-- each causal consistency mode were served.
SELECT * FROM stats;
