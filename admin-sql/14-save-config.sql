-- Write the running backends (with weights), clients and pwds back to the
-- file given with --config; comments and other options are kept.
SAVE CONFIG;
