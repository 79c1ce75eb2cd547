"""The fake Hub's own behaviour through the real `huggingface_hub` client, which the push tests rely on: uploads round
trip, every commit is a revision, and writes the Hub refuses are refused. No project code runs here; a fake that
drifted from the Hub would let the push tests pass against behaviour the Hub does not have."""

from pathlib import Path

import pytest
import torch
from fake_hub import fake_hub_fixture  # noqa: F401
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError


def test_upload_folder_round_trips_and_every_commit_is_a_revision(fake_hub, tmp_path):
    api = HfApi()
    repo_id = api.create_repo("prjepa-tests/folder").repo_id
    folder = tmp_path / "checkpoint"
    (folder / "nested").mkdir(parents=True)
    weights = torch.randn(1000).numpy().tobytes()
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text('{"model_type": "prjepa"}')
    (folder / "nested" / "notes.txt").write_text("nested file")
    (folder / "README.md").write_text("---\ntags:\n- prjepa\n---\n# first\n")
    first = api.upload_folder(repo_id=repo_id, folder_path=folder).oid

    local = Path(snapshot_download(repo_id))
    uploaded = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    for path, content in uploaded.items():
        assert (local / path).read_bytes() == content
    assert sorted(api.list_repo_files(repo_id)) == sorted([*uploaded, ".gitattributes"])
    assert fake_hub.lfs_files(repo_id) == {"model.safetensors"}
    assert api.model_info(repo_id).card_data.tags == ["prjepa"]

    api.upload_folder(repo_id=repo_id, folder_path=folder)  # nothing changed: the client skips the commit
    assert fake_hub.commits(repo_id)[-1] == first
    (folder / "README.md").write_text("---\ntags:\n- prjepa\n---\n# second\n")
    second = api.upload_folder(repo_id=repo_id, folder_path=folder).oid
    assert fake_hub.commits(repo_id)[-2:] == [first, second]
    assert api.model_info(repo_id).sha == second
    assert open(hf_hub_download(repo_id, "README.md"), encoding="utf-8").read().endswith("# second\n")
    assert open(hf_hub_download(repo_id, "README.md", revision=first), encoding="utf-8").read().endswith("# first\n")
    assert fake_hub.files(repo_id, revision=first)["model.safetensors"] == weights


def test_write_without_the_token_and_a_malformed_card_are_refused(fake_hub):
    with pytest.raises(HfHubHTTPError, match="credentials"):
        HfApi(token=False).create_repo("prjepa-tests/anonymous")
    repo_id = HfApi().create_repo("prjepa-tests/bad-card").repo_id
    with pytest.raises(ValueError, match="tags"):
        HfApi().upload_file(path_or_fileobj=b"---\ntags: prjepa\n---\n", path_in_repo="README.md", repo_id=repo_id)
    assert set(fake_hub.files(repo_id)) == {".gitattributes"}
