from dogclf.artifact import load_artifact


def test_tiny_run_produces_loadable_artifact(tiny_run):
    art = load_artifact(tiny_run)
    assert art.class_names == ["Affenpinscher", "Afghan_hound", "Airedale_terrier"]
    assert (tiny_run / "metrics.jsonl").read_text().count("\n") == 3
