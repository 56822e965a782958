"""Model registry, weights sources and freeze modes."""

import pytest
import torch

from dogclf.errors import ModelError
from dogclf.models import backbone_parameters, create_model, head_parameters, list_models, train_mode


def test_registry_lists_torchvision_and_tiny_models():
    names = list_models()
    for name in ("resnet50", "resnet18", "resnet101", "efficientnet_b0", "convnext_tiny", "tiny_cnn"):
        assert name in names


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelError, match="Did you mean resnet50"):
        create_model("resnet5O", 3)


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0", "convnext_tiny", "tiny_cnn"])
def test_new_head_has_num_classes_outputs(arch):
    model = create_model(arch, num_classes=7, weights=None).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_head_freeze_trains_only_the_classifier_and_keeps_bn_statistics():
    model = create_model("resnet18", 4, weights=None, freeze="head")
    assert all(p.requires_grad for p in head_parameters(model, "resnet18"))
    assert not any(p.requires_grad for p in backbone_parameters(model, "resnet18"))
    train_mode(model)
    assert model.fc.training and not model.bn1.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(4, 3, 32, 32))
    assert torch.equal(model.bn1.running_mean, before)


def test_full_freeze_trains_everything():
    model = create_model("tiny_cnn", 4, weights=None, freeze="full")
    assert all(p.requires_grad for p in model.parameters())


def test_local_weights_file_loads_backbone_and_replaces_head(tmp_path):
    torch.manual_seed(0)
    source = create_model("tiny_cnn", 1000, weights=None)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = create_model("tiny_cnn", 5, weights=tmp_path / "w.pth")
    assert torch.equal(model.features[0][0].weight, source.features[0][0].weight)
    assert model.fc.out_features == 5


def test_weights_file_of_another_architecture_is_rejected(tmp_path):
    torch.save(create_model("resnet18", 10).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ModelError, match="do not fit this architecture"):
        create_model("tiny_cnn", 5, weights=tmp_path / "r18.pth")


def test_pickled_module_is_refused_by_weights_only(tmp_path):
    torch.save(create_model("tiny_cnn", 3), tmp_path / "module.pth")
    with pytest.raises(ModelError, match="weights_only=True"):
        create_model("tiny_cnn", 3, weights=tmp_path / "module.pth")


def test_imagenet_weights_unavailable_offline_give_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # torch.hub.set_dir, undone after the test
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):  # no download, even with internet
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ModelError) as err:
        create_model("resnet18", 3, weights="imagenet")
    message = str(err.value)
    assert f"not in the torch cache ({tmp_path / 'hub'}/checkpoints/)" in message
    assert "url: https://download.pytorch.org/models/resnet18" in message and "--weights none" in message
