"""Which stream a command's lines go to: results (the table, the files written, the final
metrics) on stdout, so that `hmvae <command> ... > results.txt` keeps them alone; what the
command is doing (loading, evaluating, notes) on stderr with its progress."""
import os

from dataset_helpers import write_mel_2bar

from hmvae_tf import cli, dataset_version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "saved_models", "mel_2bar")


def test_evaluate_says_what_it_evaluates_on_stderr_and_prints_the_table_on_stdout(
        tmp_path, capsys):
    """Its "evaluating <model> ... [test]" line went to stdout, above the table: `hmvae
    evaluate ... > table.md` kept it in the Markdown file."""
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, splits=("train", "test"))
    capsys.readouterr()  # the build's lines
    assert cli.main(["evaluate", f"--saved_model={SHIPPED}", f"--data_dir={data_dir}",
                     "--max_windows=8", "--batch_size=8"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("| model |"), out  # the table first, nothing above it
    assert "evaluating" not in out
    assert [line for line in err.splitlines() if line.startswith("evaluating ")] == [
        f"evaluating {os.path.join(SHIPPED, '1')} (cat-mel_2bar_small) on "
        "hmvae_notesequences/mel_2bar [test]"]


def test_evaluate_names_the_build_it_measures_on_once(tmp_path, capsys):
    """Which build the windows came from (a researcher's MIDI folder or the embedded corpus,
    at which version) and how many each split holds was said nowhere; evaluate says it on
    stderr, once for models that share the dataset."""
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=8, splits=("train", "test"),
                   metadata={"source": "manual_dir /my/midi", "manual_dir": "/my/midi"})
    capsys.readouterr()  # the build's lines
    assert cli.main(["evaluate", f"--saved_model={SHIPPED}", f"--saved_model={SHIPPED}",
                     f"--data_dir={data_dir}", "--batch_size=8"]) == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("data: ")] == [
        f"data: hmvae_notesequences/mel_2bar version {dataset_version.VERSION} in {data_dir}, "
        "built from the MIDI files under /my/midi; windows per split: train 8, test 8"]
    assert "data: " not in out


def test_web_prints_the_page_s_address_on_stdout_and_its_preparation_on_stderr(
        tmp_path, capsys, monkeypatch):
    """Its "<model>: up to date", "<model>: converting ..." (and the conversion's summary) and
    "building the page ..." lines went to stdout, before the address the command exists for."""
    import shutil

    page, saved_models, models = tmp_path / "page", tmp_path / "saved_models", tmp_path / "models"
    (page / "build").mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    (page / "build" / "app.js").write_text("")
    shutil.copytree(SHIPPED, saved_models / "mel_2bar")
    shutil.copytree(os.path.join(ROOT, "web", "models", "mel_2bar"), models / "mel_2bar")
    _serve_until_ctrl_c(monkeypatch)
    assert cli.main(["web", f"--web_root={page}", f"--models={models}",
                     f"--saved_models={saved_models}", "--no_build", "--port=0"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1, out
    assert out.startswith(f"serving {page} (models: {models}) at http://127.0.0.1:"), out
    assert f"mel_2bar: up to date ({models / 'mel_2bar'})" in err.splitlines()


def test_tfjs_says_which_model_it_converts_on_stderr_and_what_it_wrote_on_stdout(
        tmp_path, capsys):
    """`hmvae tfjs --saved_models` printed "<model>: converting <export> ..." on stdout among
    the conversions' summaries; it is said on stderr now, as the single conversion's
    "loading <export> ..."."""
    import shutil

    saved_models, models = tmp_path / "saved_models", tmp_path / "models"
    shutil.copytree(SHIPPED, saved_models / "mel_2bar")
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}",
                     "--graphs=decode"]) == 0
    out, err = capsys.readouterr()
    assert f"mel_2bar: converting {saved_models / 'mel_2bar' / '1'} ..." in err.splitlines()
    assert "converting" not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"converted cat-mel_2bar_small (melody, 32 steps, z 256) to "
                               f"{models / 'mel_2bar'} in "), out
    assert lines[-1] == f"1 converted; model list: {models / 'index.json'}"


def test_the_python_api_says_what_it_is_doing_on_stderr_by_default(tmp_path, capsys,
                                                                   monkeypatch):
    """web.build_bundle, web.prepare and tfjs.convert_all wrote "building the page ..." and
    "<model>: up to date" on stdout by default, unlike every command: from Python their result
    is what they do or return, and those lines say what they are doing."""
    import shutil

    from hmvae_tf import tfjs, web

    page, saved_models, models = tmp_path / "page", tmp_path / "saved_models", tmp_path / "models"
    (page / "node_modules").mkdir(parents=True)  # no `npm ci`
    (page / "index.html").write_text("<html></html>")
    shutil.copytree(SHIPPED, saved_models / "mel_2bar")
    shutil.copytree(os.path.join(ROOT, "web", "models", "mel_2bar"), models / "mel_2bar")
    built = []
    monkeypatch.setattr(web.shutil, "which", lambda name: f"/bin/{name}")
    monkeypatch.setattr(web.subprocess, "run", lambda cmd, **_: built.append(cmd))
    web.build_bundle(str(page))
    assert built == [["/bin/npm", "run", "--silent", "build"]]
    (page / "build").mkdir()
    (page / "build" / "app.js").write_text("")
    assert tfjs.convert_all(str(saved_models), str(models)) == []
    web.prepare(str(page), str(models), str(saved_models), build=False)
    out, err = capsys.readouterr()
    assert out == ""
    up_to_date = f"mel_2bar: up to date ({models / 'mel_2bar'})"
    assert err.splitlines() == [f"building the page ({web.BUNDLE}) ...", up_to_date, up_to_date]


def test_web_sends_npm_s_own_lines_to_stderr(tmp_path, capfd, monkeypatch):
    """npm ci writes its "added N packages in 3s" to its stdout, which `hmvae web` handed on
    to its own: on a fresh clone (no node_modules) the page's address was not alone there.
    A stand-in npm (no registry needed) writes to its stdout as the real one does."""
    page, models, bin_dir = tmp_path / "page", tmp_path / "models", tmp_path / "bin"
    page.mkdir()
    (page / "index.html").write_text("<html></html>")
    models.mkdir()
    (models / "index.json").write_text('{"models": []}')
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n"
                   "if [ \"$1\" = ci ]; then mkdir node_modules; echo 'added 1 package in 1s';\n"
                   "else mkdir -p build && : > build/app.js && echo 'build/app.js  1.4mb'; fi\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _serve_until_ctrl_c(monkeypatch)
    assert cli.main(["web", f"--web_root={page}", f"--models={models}", "--saved_models=",
                     "--port=0"]) == 0
    out, err = capfd.readouterr()
    assert (page / "build" / "app.js").exists()  # the stand-in ran
    assert len(out.splitlines()) == 1, out
    assert out.startswith(f"serving {page} (models: {models}) at http://127.0.0.1:"), out
    assert "added 1 package in 1s" in err.splitlines()
    assert "build/app.js  1.4mb" in err.splitlines()


def _serve_until_ctrl_c(monkeypatch) -> None:
    """`hmvae web` as if Ctrl-C came the moment it started serving: it says its address and
    returns 0."""
    from hmvae_tf import web

    make_server = web.make_server

    def served_until_ctrl_c(*args, **kwargs):
        server = make_server(*args, **kwargs)

        def serve_forever():
            raise KeyboardInterrupt

        server.serve_forever = serve_forever
        return server

    monkeypatch.setattr(web, "make_server", served_until_ctrl_c)
