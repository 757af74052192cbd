"""SIGTERM stops an `hmvae` command like Ctrl-C: its clean-up runs (a half-made export,
bundle, card or file is removed) instead of the process ending where it stands."""
import os
import signal
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A command that writes a partial output and removes it when stopped, as `hmvae export`
# removes its .tmp-<version>-<pid> folder.
SLOW_WRITER = '''
import os, time

def add_arguments(parser, command):
    parser.add_argument("--out")

def run(args):
    partial = args.out + ".partial"
    with open(partial, "w") as f:
        f.write("half")
    try:
        print("writing", flush=True)
        time.sleep(60)
    except BaseException:
        os.remove(partial)
        raise
'''


def run_until(tmp_path, command: str, signum: int) -> tuple[subprocess.CompletedProcess, str]:
    (tmp_path / "slow_writer.py").write_text(SLOW_WRITER)
    out = str(tmp_path / "model")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from hmvae_tf import cli
        cli.COMMANDS[{command!r}] = ("slow_writer", "writes slowly")
        sys.exit(cli.main([{command!r}, "--out", {out!r}]))
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), out


def test_sigterm_runs_the_clean_up_and_says_so(tmp_path):
    done, out = run_until(tmp_path, "slow", signal.SIGTERM)
    assert done.returncode == 128 + signal.SIGTERM
    assert done.stderr.strip().endswith("terminated (SIGTERM)")
    assert not os.path.exists(out + ".partial")


def test_serve_and_train_keep_their_own_handling(tmp_path):
    """train saves a checkpoint on SIGTERM itself and must stay killable while TensorFlow
    blocks waiting for multi-worker peers; serve stops its server: the CLI leaves them be."""
    done, out = run_until(tmp_path, "train", signal.SIGTERM)
    assert done.returncode == -signal.SIGTERM
    assert os.path.exists(out + ".partial")
