"""`tessera ... | head`: a reader that leaves early is not an error of Tessera's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import argparse, sys
    from tessera import cli

    def lots(args):
        for _ in range(200_000):
            print("x" * 80)
        return 0

    def parser():
        p = argparse.ArgumentParser()
        p.add_argument("-v", "--verbose", action="store_true")
        p.set_defaults(func=lots)
        return p

    cli.build_parser = parser
    sys.exit(cli.main([]))
    """
)


def test_closed_stdout_ends_quietly_as_sigpipe_does():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.read(10)  # the reader takes a little, as `head -1` does, then leaves
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Broken pipe" not in stderr and "Traceback" not in stderr, stderr
