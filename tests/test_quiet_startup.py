"""TensorFlow's start-up lines stay off a command's terminal; anything else still gets there."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from hmvae_tf import quiet_startup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the tensorflow 2.19 wheel printed on this project's CPU-only machines.
STARTUP_TEXT = """\
2026-12-06 22:39:26.593496: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
E0000 00:00:1796596766.677862    8837 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered
W0000 00:00:1796596766.734776    8837 computation_placer.cc:177] computation placer already registered. Please check linkage and avoid linking the same target more than once.
2026-12-06 22:39:36.235643: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
I0000 00:00:1796596776.497861    8837 mlir_graph_optimization_pass.cc:425] MLIR V1 optimization pass is not enabled
"""
# What tensorflowjs 4.22's converter printed there: grappler's session per graph, and the
# advert tensorflow_decision_forests printed on import (later installs no longer print it).
CONVERTER_TEXT = """\
I0000 00:00:1796596801.118204    9121 devices.cc:76] Number of eligible GPUs (core count >= 8, compute capability >= 0.0): 0
I0000 00:00:1796596801.118391    9121 single_machine.cc:374] Starting new session
Try https://ydf.readthedocs.io, the successor of TensorFlow Decision Forests with more features and faster training!
"""
REAL_WARNING = "UserWarning: something the user should read\n"
ABSL_OR_TF_LOG_LINE = re.compile(r"^([EWI]0000 |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWI] )",
                                 re.MULTILINE)


def test_known_startup_lines_are_dropped_and_others_kept():
    assert quiet_startup.unknown_lines(STARTUP_TEXT) == ""
    assert quiet_startup.unknown_lines(STARTUP_TEXT + REAL_WARNING) == REAL_WARNING


def test_the_converters_chatter_is_dropped_and_others_kept():
    assert quiet_startup.unknown_lines(CONVERTER_TEXT) == ""
    assert quiet_startup.unknown_lines(REAL_WARNING + CONVERTER_TEXT) == REAL_WARNING


def test_the_filter_replays_what_it_does_not_know(capfd):
    with quiet_startup.stderr_filtered():
        os.write(2, (STARTUP_TEXT + REAL_WARNING).encode())
    assert capfd.readouterr().err == REAL_WARNING


def test_a_user_set_log_level_turns_it_off():
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert not quiet_startup.install(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "0"}


def test_a_command_prints_its_output_and_no_startup_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "hmvae_tf.cli", "sample",
         f"--saved_model={REPO}/saved_models/mel_2bar", "-n", "1", f"--out={tmp_path}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 1 MIDI file" in proc.stdout
    assert not quiet_startup.KNOWN_STARTUP_LINES.search(proc.stderr), proc.stderr
    assert not ABSL_OR_TF_LOG_LINE.search(proc.stderr), proc.stderr


def test_tfjs_prints_its_summary_and_no_converter_chatter(tmp_path):
    """The converter's grappler sessions (two absl lines per graph) stay off `hmvae tfjs`'s
    terminal. (YDF's advert, which older installs printed, is covered by the line test above.)"""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "hmvae_tf.cli", "tfjs", "--graphs=decode", "--index=none",
         f"--saved_model={REPO}/saved_models/mel_2bar", f"--out={tmp_path / 'mel_2bar'}"],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "weights:" in proc.stdout
    assert not ABSL_OR_TF_LOG_LINE.search(proc.stderr), proc.stderr


def test_tensorflow_starts_without_jax_which_stays_importable():
    """tensorflowjs installs JAX, and `import tensorflow` would import it for nothing."""
    script = textwrap.dedent("""
        import sys
        from hmvae_tf import quiet_startup
        quiet_startup.install({"TF_CPP_MIN_LOG_LEVEL": "3"})
        import tensorflow
        print("jax imported with tensorflow:", "jax" in sys.modules)
        try:
            import jax
            print("jax importable after: True")
        except ImportError:
            print("jax importable after: not installed")
    """)
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "jax imported with tensorflow: False" in proc.stdout
    assert "jax importable after: True" in proc.stdout or "not installed" in proc.stdout


def test_child_processes_quiet_themselves_unless_the_user_set_the_level():
    """`hmvae demo` starts `hmvae serve`, which shows its log: the level install() set must
    not reach it (the child would then show TF's start-up lines), a level the user set must."""
    script = textwrap.dedent("""
        import os
        from hmvae_tf import quiet_startup
        quiet_startup.install()
        print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
              quiet_startup.child_environ().get("TF_CPP_MIN_LOG_LEVEL"))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    run = lambda env: subprocess.run([sys.executable, "-c", script], capture_output=True,  # noqa: E731
                                     text=True, env=env, timeout=120).stdout.split()
    assert run(env) == ["3", "None"]
    assert run(dict(env, TF_CPP_MIN_LOG_LEVEL="1")) == ["1", "1"]


def test_xla_start_up_lines_stay_off_a_training_run():
    """XLA's CPU service logs three absl lines on its first compile (a training run's first
    step); start_xla() has them happen, filtered, before."""
    script = textwrap.dedent("""
        from hmvae_tf import quiet_startup
        quiet_startup.install()
        import tensorflow as tf
        quiet_startup.start_xla()
        print(float(tf.function(lambda x: x * 3, jit_compile=True)(tf.constant(2.0))))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["6.0"]
    assert not ABSL_OR_TF_LOG_LINE.search(proc.stderr), proc.stderr
