"""The attachment store: safe names, content addressing, atomic writes, keys that cannot leave the root."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest

from core.attachments import store
from core.attachments.store import AttachmentStore
from core.errors import NotFoundError, ValidationFailedError

DIGEST = "0123456789abcdef0123456789abcdef"


def test_save_is_content_addressed_and_deduplicated(tmp_path: Path) -> None:
    first = AttachmentStore(tmp_path).save("invoice.pdf", "application/pdf", b"%PDF-1.4 a", namespace="uploads")
    assert first.storage_key is not None and first.storage_key.startswith("uploads/")
    assert first.filename == "invoice.pdf" and first.size == 10 and first.content_type == "application/pdf"
    path = AttachmentStore(tmp_path).open(first.storage_key)
    assert path.read_bytes() == b"%PDF-1.4 a"
    inode = path.stat().st_ino
    again = AttachmentStore(tmp_path).save("invoice.pdf", "application/pdf", b"%PDF-1.4 a", namespace="uploads")
    assert again == first and path.stat().st_ino == inode  # not rewritten (only touched: see the upload sweep)
    other = AttachmentStore(tmp_path).save("invoice.pdf", "application/pdf", b"%PDF-1.4 b", namespace="uploads")
    assert other.storage_key != first.storage_key
    # No temporary files are left behind.
    assert not [p for p in tmp_path.rglob(".part-*")]


def test_content_type_is_normalised(tmp_path: Path) -> None:
    files = AttachmentStore(tmp_path)
    assert files.save("a.txt", "Text/Plain; charset=utf-8", b"x", namespace="uploads").content_type == "text/plain"
    assert AttachmentStore(tmp_path).save("b.txt", "<script>", b"x", namespace="uploads").content_type \
        == "application/octet-stream"


@pytest.mark.parametrize("key", [
    "../../etc/passwd", "uploads/../../etc/passwd", "/etc/passwd", "C:/Windows/win.ini", "uploads\\..\\x",
    "", "uploads//x", "uploads/.part-abc", "uploads/a\x00b", ".", "uploads/..",
])
def test_open_path_refuses_keys_outside_the_store(tmp_path: Path, key: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret").write_text("no")
    (root / "uploads").mkdir()
    (root / "uploads" / ".part-abc").write_text("half")
    with pytest.raises(NotFoundError):
        AttachmentStore(root).open(key)


def test_open_path_refuses_symlinks_out_of_the_store_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = root / "uploads" / "ab" / DIGEST
    folder.mkdir(parents=True)
    (tmp_path / "secret").write_text("no")
    (folder / "link.txt").symlink_to(tmp_path / "secret")
    (folder / "dir.txt").mkdir()
    with pytest.raises(NotFoundError):
        AttachmentStore(root).open(f"uploads/ab/{DIGEST}/link.txt")
    with pytest.raises(NotFoundError):
        AttachmentStore(root).open(f"uploads/ab/{DIGEST}/missing.pdf")
    with pytest.raises(NotFoundError):
        AttachmentStore(root).open(f"uploads/ab/{DIGEST}/dir.txt")  # a folder is not a file


def test_verify_checks_the_declared_size(tmp_path: Path) -> None:
    info = AttachmentStore(tmp_path).save("a.txt", "text/plain", b"abc", namespace="uploads")
    assert info.storage_key is not None
    assert AttachmentStore(tmp_path).verify(info.storage_key) == 3
    assert AttachmentStore(tmp_path).verify(info.storage_key, 3) == 3
    with pytest.raises(ValidationFailedError):
        AttachmentStore(tmp_path).verify(info.storage_key, 4)


def test_the_store_keeps_names_of_earlier_versions(tmp_path: Path) -> None:
    """Keys written before reserved Windows names were prefixed (or runs of spaces joined) are still keys."""
    for name in ("CON.txt", "a  b.pdf"):
        key = f"email/ab/{DIGEST}/{name}"
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"old")
        assert AttachmentStore(tmp_path).read(key) == b"old"


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure between writing and renaming leaves neither the final file nor the temporary one."""

    def broken_replace(_src: str, _dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        AttachmentStore(tmp_path).save("a.txt", "text/plain", b"data", namespace="uploads")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_namespace_is_checked(tmp_path: Path) -> None:
    for namespace in ("../x", "Uploads", "", "a//b", "/abs", "models", "uploads/x"):
        with pytest.raises(ValueError, match="namespace"):
            AttachmentStore(tmp_path).save("a.txt", None, b"x", namespace=namespace)


# --- a root of its own, keys of one form ------------------------------------------------------------------------


def test_only_keys_the_store_writes_are_opened(tmp_path: Path) -> None:
    """The root holds nothing but stored files, and even a file placed there is served only by a key of the form
    `<namespace>/<aa>/<hash>/<name>` with a namespace the store writes."""
    files = AttachmentStore(tmp_path / "attachments")
    info = files.save("a.txt", "text/plain", b"abc", namespace="email")
    assert info.storage_key is not None and files.read(info.storage_key) == b"abc"
    (files.root / "switchboard.sqlite3").write_bytes(b"SQLite format 3\x00")
    (files.root / "models" / "ab" / DIGEST).mkdir(parents=True)
    (files.root / "models" / "ab" / DIGEST / "model.joblib").write_bytes(b"model")
    for key in ("switchboard.sqlite3", f"models/ab/{DIGEST}/model.joblib", "email", "email/ab",
                f"email/AB/{DIGEST}/a.txt", f"email/ab/{DIGEST[:-1]}/a.txt", f"email/ab/{DIGEST}/.a.txt",
                f"email/ab/{DIGEST}/a.txt/", f"email/ab/{DIGEST}/a .txt ", f"email/ab/{DIGEST}/x/a.txt"):
        assert not files.is_key(key), key
        with pytest.raises(NotFoundError):
            files.open(key)


def test_iter_and_delete(tmp_path: Path) -> None:
    files = AttachmentStore(tmp_path)
    one = files.save("one.pdf", None, b"1", namespace="uploads")
    two = files.save("two.pdf", None, b"2", namespace="uploads")
    theirs = files.save("photo.jpg", None, b"3", namespace="telegram")
    assert {f.key for f in files.iter("uploads")} == {one.storage_key, two.storage_key}
    assert [f.size for f in files.iter("telegram")] == [1]
    assert list(files.iter("models")) == []
    assert one.storage_key is not None and theirs.storage_key is not None
    assert files.delete(one.storage_key) is True
    assert files.delete(one.storage_key) is False
    assert not (tmp_path / one.storage_key).parent.exists()  # the digest folders went with it
    assert files.delete("../x") is False
    assert files.read(theirs.storage_key) == b"3"


def legacy_files(data_dir: Path) -> dict[str, bytes]:
    """Files as the old layout left them: the namespaces straight under the data dir, next to the database."""
    old = AttachmentStore(data_dir)
    stored = {}
    for namespace, name, data in (("email", "договор.pdf", b"%PDF contract"), ("telegram", "photo.jpg", b"\xff\xd8"),
                                  ("uploads", "guide.pdf", b"%PDF guide"), ("uploads", "price.pdf", b"%PDF price")):
        info = old.save(name, None, data, namespace=namespace)
        assert info.storage_key is not None
        stored[info.storage_key] = data
    (data_dir / "switchboard.sqlite3").write_bytes(b"SQLite format 3\x00")
    (data_dir / "telegram" / "offset-42.json").write_text('{"offset": 7}')
    return stored


def test_old_layout_is_moved_in_once(tmp_path: Path) -> None:
    stored = legacy_files(tmp_path)
    then = time.time() - 8 * 86400
    for key in stored:
        os.utime(tmp_path / key, (then, then))
    (tmp_path / "uploads" / ".part-half").write_bytes(b"half")  # a write cut short: not a stored file
    files = store.open_store(tmp_path / "attachments", tmp_path)
    for key, data in stored.items():
        assert files.read(key) == data
        assert not (tmp_path / key).exists()
        assert (files.root / key).stat().st_mtime == pytest.approx(then)  # the upload sweep goes by it
    assert not (tmp_path / "email").exists()
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [".part-half"]
    # What is not a stored file stays where it was: the Telegram offset, the database, a half-written file.
    assert (tmp_path / "telegram" / "offset-42.json").read_text() == '{"offset": 7}'
    assert (tmp_path / "switchboard.sqlite3").exists() and (tmp_path / "uploads" / ".part-half").exists()
    assert files.adopt_legacy(tmp_path) == 0  # the second run has nothing to do


def test_a_move_cut_short_loses_nothing_and_the_next_run_finishes(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stored = legacy_files(tmp_path)
    files = AttachmentStore(tmp_path / "attachments")
    real_rename = os.rename
    calls = 0

    def crash_on_the_third(src: Any, dst: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(errno.EIO, "the disk went away")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_the_third)
    with pytest.raises(OSError, match="went away"):
        files.adopt_legacy(tmp_path)
    monkeypatch.setattr(os, "rename", real_rename)
    for key, data in stored.items():
        places = [p for p in (tmp_path / key, files.root / key) if p.exists()]
        assert len(places) == 1 and places[0].read_bytes() == data
    # A copy that made it while its original stayed (a crash between the two): the next run keeps one.
    first = next(k for k in stored if (files.root / k).exists())
    (tmp_path / first).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / first).write_bytes(stored[first])
    files.adopt_legacy(tmp_path)
    for key, data in stored.items():
        assert files.read(key) == data and not (tmp_path / key).exists()


def test_old_layout_on_another_file_system_is_copied_then_removed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stored = legacy_files(tmp_path)

    def cross_device(_src: Any, _dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", cross_device)
    files = AttachmentStore(tmp_path / "attachments")
    assert files.adopt_legacy(tmp_path) == len(stored)
    for key, data in stored.items():
        assert files.read(key) == data and not (tmp_path / key).exists()
    assert not list(files.root.rglob(".part-*"))
