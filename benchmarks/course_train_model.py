"""The course's train_model.py, as bench_run.py's baseline: a plain fine-tuning script run as its own process.

Written the way the course notebooks write it: torchvision ImageFolder with PIL full decode, fp32 NCHW, a
ResNet50 whose parameters are frozen and whose fc is replaced, train and validate each epoch, test once at the
end, torch.save the model. Nothing in it imports dogclf.

    python benchmarks/course_train_model.py --data DATA --model-dir OUT --epochs 2
"""

from __future__ import annotations

import argparse
import os

import torch
import torchvision
from torch import nn
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def net(num_classes: int, arch: str) -> nn.Module:
    """A torchvision model with frozen parameters and a new fully connected layer."""
    model = torchvision.models.get_model(arch, weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def loaders(data: str, size: int, batch_size: int, workers: int) -> dict[str, torch.utils.data.DataLoader]:
    """train (random crop + flip, shuffled), valid and test (resize + center crop) loaders."""
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD),
    ])  # fmt: skip
    eval_tf = transforms.Compose([
        transforms.Resize(int(size / 0.875)), transforms.CenterCrop(size),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD),
    ])  # fmt: skip
    out = {}
    for split in ("train", "valid", "test"):
        ds = datasets.ImageFolder(os.path.join(data, split), train_tf if split == "train" else eval_tf)
        out[split] = torch.utils.data.DataLoader(ds, batch_size, shuffle=split == "train", num_workers=workers)
    return out


def train(model, loader, criterion, optimizer) -> float:
    """One epoch; returns the mean loss."""
    model.train()
    total, n = 0.0, 0
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * labels.size(0)
        n += labels.size(0)
    return total / n


def test(model, loader, criterion) -> tuple[float, float]:
    """Mean loss and accuracy over a loader."""
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            outputs = model(inputs)
            total += criterion(outputs, labels).item() * labels.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
            n += labels.size(0)
    return total / n, correct / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    data = loaders(args.data, args.image_size, args.batch_size, args.workers)
    model = net(len(data["train"].dataset.classes), args.arch)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.fc.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        loss = train(model, data["train"], criterion, optimizer)
        valid_loss, valid_acc = test(model, data["valid"], criterion)
        print(f"epoch {epoch + 1}: train loss {loss:.4f}, valid loss {valid_loss:.4f}, valid acc {valid_acc:.4f}")
    test_loss, test_acc = test(model, data["test"], criterion)
    print(f"test loss {test_loss:.4f}, test acc {test_acc:.4f}")
    os.makedirs(args.model_dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.model_dir, "model.pth"))


if __name__ == "__main__":
    main()
