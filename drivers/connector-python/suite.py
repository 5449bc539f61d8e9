"""Runs mysql-connector-python's own unittests.py and records every outcome.

Usage (from the unpacked source distribution's top directory):

    python suite.py OUTCOMES_FILE [unittests.py options...]

It imports the distribution's unittests.py and gives its test runner a
result class that appends one line per test outcome to OUTCOMES_FILE as it
happens ("<STATUS>\t<test id>\t<seconds>[\t<exception>]", STATUS one of
ok, FAIL, ERROR, skip, xfail, XPASS) and writes "START\t<test id>" before
each test, so a run cut short by a time-out still shows which test hung.
Tests named in the file $CPY_EXCLUDE_FILE (test-id prefixes) are taken out
of the suite before it runs and recorded as "excluded". Otherwise the suite,
its options and its output are unchanged.

The distribution's setUpClass errors are reported by unittest under ids
like "setUpClass (tests.test_bugs.BugOra123)"; sub-test failures under the
sub-test's id, "<test id> (<params>)".
"""

import os
import sys
import time
import unittest

OUTCOMES = os.path.abspath(sys.argv.pop(1))
sys.path.insert(0, os.getcwd())

import unittests  # noqa: E402  (the distribution's runner, from the cwd)

_out = open(OUTCOMES, "a", encoding="utf-8", buffering=1)  # line-buffered


_started = [time.monotonic()]


def _record(status, test, err=None):
    name = test.id() if hasattr(test, "id") else str(test)
    took = time.monotonic() - _started[0]
    line = f"{status}\t{' '.join(name.split())}\t{took:.2f}"
    if err is not None:
        # The exception, on one line: the reason a test failed, to compare
        # beyond the test ids (it may name ports or thread ids, so it is
        # shown, not compared, by run.sh).
        reason = f"{err[0].__name__}: {err[1]}"
        line += "\t" + " ".join(reason.split())[:300]
    _out.write(line + "\n")


class _RecordingResult(unittests.BasicTestResult):
    def startTest(self, test):
        _started[0] = time.monotonic()
        _out.write(f"START\t{test.id()}\n")
        super().startTest(test)

    def addSuccess(self, test):
        _record("ok", test)
        super().addSuccess(test)

    def addFailure(self, test, err):
        _record("FAIL", test, err)
        super().addFailure(test, err)

    def addError(self, test, err):
        _record("ERROR", test, err)
        super().addError(test, err)

    def addSkip(self, test, reason):
        _record("skip", test)
        super().addSkip(test, reason)

    def addExpectedFailure(self, test, err):
        _record("xfail", test)
        super().addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test):
        _record("XPASS", test)
        super().addUnexpectedSuccess(test)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            failure = issubclass(err[0], test.failureException)
            _record("FAIL" if failure else "ERROR", subtest, err)
        super().addSubTest(test, subtest, err)


def _excluded_prefixes():
    path = os.environ.get("CPY_EXCLUDE_FILE")
    if not path:
        return ()
    with open(path, encoding="utf-8") as f:
        lines = (line.split("#", 1)[0].strip() for line in f)
        return tuple(line for line in lines if line)


EXCLUDED = _excluded_prefixes()


def _is_excluded(test_id):
    return any(test_id == p or test_id.startswith(p + ".") for p in EXCLUDED)


def _filter(suite):
    """The suite without the tests exclude.txt names (recorded as 'excluded')."""
    kept = []
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            kept.append(_filter(t))
        elif _is_excluded(t.id()):
            _record("excluded", t)
        else:
            kept.append(t)
    return unittest.TestSuite(kept)


_load = unittest.TestLoader.loadTestsFromNames


def _load_filtered(self, names, module=None):
    return _filter(_load(self, names, module))


unittest.TestLoader.loadTestsFromNames = _load_filtered
# Not a subclass put in its place: BasicTestRunner.__init__ calls
# super(BasicTestRunner, self), which must keep naming the original class.
unittests.BasicTestRunner.resultclass = _RecordingResult
sys.argv[0] = "unittests.py"
unittests.main()
