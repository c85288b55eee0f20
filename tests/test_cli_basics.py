import subprocess
import sys

from ftscale.cli import main


def test_help_exits_zero(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "ftscale" in capsys.readouterr().out


def test_unknown_command_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from ftscale.cli import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'ray', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_demo_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    # issue 17, defect 9: a traceback before
    from ftscale.cli import main

    f = tmp_path / "afile"
    f.write_text("keep")
    for out in (f, f / "sub"):
        assert main(["demo", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ftscale: error:") and len(err.strip().splitlines()) == 1
    assert f.read_text() == "keep"
