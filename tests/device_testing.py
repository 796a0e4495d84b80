"""Stand-ins for GPU behaviour, for tests that run on the CPU."""
import torch


def refuse_foreign_generators(monkeypatch):
    """Make ``torch.randn``/``rand``/``randint`` refuse a generator of another device, as
    they do on CUDA (on the CPU the `meta` device accepts any generator, which would hide
    the bug of drawing on the model's device with the user's CPU generator)."""
    for name in ("randn", "rand", "randint"):
        def strict(*args, _original=getattr(torch, name), generator=None, device=None, **kwargs):
            wanted = torch.device(device if device is not None else "cpu").type
            if generator is not None and generator.device.type != wanted:
                raise RuntimeError(f"Expected a '{wanted}' device type for generator but found '{generator.device.type}'")
            return _original(*args, generator=generator, device=device, **kwargs)
        monkeypatch.setattr(torch, name, strict)
