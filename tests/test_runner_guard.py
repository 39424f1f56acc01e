"""tests/run, the README's test command, must not pass when it ran nothing."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tests_run_fails_when_no_test_is_collected(tmp_path):
    env = dict(os.environ, TESTS_RUN_NO_INSTALL="1", TEST_WORKERS="0",
               TEST_JUNIT=str(tmp_path / "junit.xml"))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    r = subprocess.run(["bash", "tests/run", "tests/test_runner_guard.py", "-k", "no_test_has_this_name",
                        "-p", "no:cacheprovider"],
                       cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "collected no tests" in r.stderr


def test_scripts_are_bash_and_parse():
    for script in ("tests/run", ".ci/run"):
        path = ROOT / script
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
