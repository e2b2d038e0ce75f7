"""The parse sandbox's child runs only the parser, not the parent's main script again."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_parse_child_does_not_run_the_parents_main_script_again(tmp_path):
    # `serve` runs as the console script, whose top level imports the whole CLI: re-run in
    # every child, that cost 340-640 ms per parse instead of ~20 ms (tests/e2e/test_crash.py).
    marker = tmp_path / "main-ran"
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            with open({str(marker)!r}, "a") as fh:  # top level: runs wherever this file runs
                fh.write("x")

            if __name__ == "__main__":
                from helpfaster_box.knowledge import sandbox

                for _ in range(3):
                    doc = sandbox.parse(
                        b"# Hours\\n\\nOpen at 8.\\n", "md", title_hint=None, limits=sandbox.Limits()
                    )
                    assert "Open at 8." in doc.sections[0].text, doc
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "x", "the main script ran again in a parse child"


def test_a_python_whose_forkserver_launch_differs_gets_its_own_launch(monkeypatch):
    # The override copies CPython's `Popen._launch` (the same code in 3.11 and in CPython main). A Python
    # whose launch is other code must get that code (a slower child start, never a copy
    # of an older launch that may no longer fit its forkserver).
    from multiprocessing import popen_forkserver

    from helpfaster_box.knowledge import sandbox

    stock = popen_forkserver.Popen._launch
    launched: list[str] = []

    def other_launch(self, process_obj):  # stands for another CPython's launch
        launched.append(process_obj.name)
        stock(self, process_obj)

    monkeypatch.setattr(popen_forkserver.Popen, "_launch", other_launch)
    doc = sandbox.parse(b"# Hours\n\nOpen at 8.\n", "md", title_hint=None, limits=sandbox.Limits())
    assert "Open at 8." in doc.sections[0].text
    assert launched == ["parse"]


def test_this_pythons_forkserver_launch_is_the_one_the_override_copies():
    # Fails on a Python that changed it: the fast child start is then off (see above).
    from helpfaster_box.knowledge import sandbox

    assert sandbox.launch_known()
