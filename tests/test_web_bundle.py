"""`hmvae web` rebuilds the page bundle when what it is built from changed: web.bundle_is_current
(no Node needed: file times only)."""
import os

from hmvae_tf import web

BUILT = 1_000_000_000  # the bundle's time; sources are made older or newer than it


def page_with_bundle(root):
    """A web root whose bundle is newer than all its sources (modules in src/ and src/lib/)."""
    files = ["build.mjs", "package-lock.json", "style.css", "index.html", "src/main.js",
             "src/lib/helper.js", "src/lib/old.js", web.BUNDLE]
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("// x\n")
    for rel in files + ["src", "src/lib"]:  # folders too: adding files above touched them
        os.utime(root / rel, (BUILT - 10, BUILT - 10))
    os.utime(root / web.BUNDLE, (BUILT, BUILT))
    return root


def edited(path):
    os.utime(path, (BUILT + 10, BUILT + 10))


def test_a_fresh_bundle_is_current_and_a_missing_one_is_not(tmp_path):
    root = page_with_bundle(tmp_path)
    assert web.bundle_is_current(str(root))
    (root / web.BUNDLE).unlink()
    assert not web.bundle_is_current(str(root))


def test_an_edit_in_a_subfolder_of_src_makes_the_bundle_stale(tmp_path):
    """Only the files directly in src/ used to count: a module edited in src/lib/ was served
    from the old bundle."""
    root = page_with_bundle(tmp_path)
    edited(root / "src" / "lib" / "helper.js")
    assert not web.bundle_is_current(str(root))


def test_a_module_removed_from_a_subfolder_makes_the_bundle_stale(tmp_path):
    root = page_with_bundle(tmp_path)
    (root / "src" / "lib" / "old.js").unlink()  # the folder's time is now
    assert not web.bundle_is_current(str(root))


def test_the_build_script_and_lock_count_and_unbundled_files_do_not(tmp_path):
    """build.mjs bundles src/main.js and its imports with the locked npm packages; style.css
    and index.html are served as they are, so their edits need no rebuild."""
    for rel, stale in [("build.mjs", True), ("package-lock.json", True), ("src/main.js", True),
                       ("style.css", False), ("index.html", False)]:
        root = page_with_bundle(tmp_path / rel.replace("/", "_"))
        edited(root / rel)
        assert web.bundle_is_current(str(root)) is not stale, rel
