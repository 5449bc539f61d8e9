-- Re-read the config file and re-apply the command line (SIGHUP does the
-- same). Backends that stay keep their pools and state.
RELOAD CONFIG;
SELECT * FROM backends;
