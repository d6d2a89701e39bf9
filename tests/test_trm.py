"""The TRM core: shapes, the gradient rule of deep recursion, halting head, depth, presets."""

from __future__ import annotations

import pytest
import torch

from recursa.core.config import ConfigError, parse_config
from recursa.core.presets import PRESETS
from recursa.core.trm import TRMConfig, TRMCore, TRMTokenModel, preset_parameter_counts

B, L, H, VOCAB = 3, 5, 16, 11


def make_core(mixer: str = "attention", **overrides) -> TRMCore:
    torch.manual_seed(0)
    config = TRMConfig(hidden_size=H, num_heads=2, seq_len=L, mixer=mixer, **overrides)
    return TRMCore(config)


def random_x(requires_grad: bool = False) -> torch.Tensor:
    return torch.randn(B, L, H, generator=torch.Generator().manual_seed(1)).requires_grad_(
        requires_grad
    )


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_output_shapes(mixer):
    config = TRMConfig(hidden_size=H, num_heads=2, seq_len=L, mixer=mixer)
    model = TRMTokenModel(config, VOCAB)
    logits, out = model(torch.randint(VOCAB, (B, L)))
    assert logits.shape == (B, L, VOCAB)
    assert out.y.shape == out.z.shape == (B, L, H)
    assert out.q_logit.shape == (B,)
    assert [t.shape for t in out.carry] == [(B, L, H), (B, L, H)]


def test_mlp_mixer_rejects_other_lengths():
    core = make_core("mlp")
    with pytest.raises(ValueError, match="seq_len"):
        core(torch.randn(B, L + 1, H))


def test_carry_is_detached_and_answer_is_not():
    out = make_core()(random_x())
    assert out.y.requires_grad
    assert not out.carry[0].requires_grad and not out.carry[1].requires_grad
    assert torch.equal(out.carry[0], out.y) and torch.equal(out.carry[1], out.z)


def test_carry_continues_the_recursion():
    core, x = make_core(), random_x()
    first = core(x, T=1)
    resumed = core(x, carry=first.carry, T=2)
    straight = core(x, T=3)
    torch.testing.assert_close(resumed.y, straight.y)
    torch.testing.assert_close(resumed.z, straight.z)


def test_latent_recursion_updates_z_from_x_and_y_from_z_only():
    core, x, n = make_core(), random_x(), 3
    y, z = core.initial_carry(B, L)
    got_y, got_z = core.latent_recursion(x, y, z, n)
    for _ in range(n):
        z = core.net(x, y, z)
    torch.testing.assert_close(got_z, z)
    torch.testing.assert_close(got_y, core.net(y, z))


def _gradients(core: TRMCore, x: torch.Tensor, y: torch.Tensor, q_logit: torch.Tensor):
    core.zero_grad()
    x.grad = None
    # y is RMS-normalised, so use a fixed random readout rather than a norm of y.
    readout = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    ((y * readout).sum() + q_logit.sum()).backward()
    grads = {name: p.grad.clone() for name, p in core.named_parameters() if p.grad is not None}
    return grads, x.grad.clone()


def test_gradients_flow_only_through_the_last_cycle():
    core, n = make_core(T=3, n=2), 2
    x = random_x(requires_grad=True)
    out = core(x)
    got, got_x = _gradients(core, x, out.y, out.q_logit)

    # Reference: the first T-1 cycles without gradients, then one differentiable cycle.
    with torch.no_grad():
        y, z = core.initial_carry(B, L)
        for _ in range(2):
            y, z = core.latent_recursion(x, y, z, n)
    y, z = core.latent_recursion(x, y, z, n)
    expected, expected_x = _gradients(core, x, y, core.q_head(y[:, 0]).squeeze(-1))

    # Backpropagating through every cycle gives other gradients, so the comparison has teeth.
    y, z = core.initial_carry(B, L)
    for _ in range(3):
        y, z = core.latent_recursion(x, y, z, n)
    full, full_x = _gradients(core, x, y, core.q_head(y[:, 0]).squeeze(-1))

    assert got.keys() == expected.keys()
    assert "y_init" not in got and "z_init" not in got
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], msg=name)
    torch.testing.assert_close(got_x, expected_x)
    weight = "net.blocks.0.mlp.down.weight"
    assert not torch.allclose(full[weight], got[weight])
    assert not torch.allclose(full_x, got_x)


def test_single_cycle_trains_initial_states():
    core = make_core(T=1)
    out = core(random_x())
    out.y.sum().backward()
    assert core.y_init.grad is not None and core.z_init.grad is not None


def test_q_head_starts_at_minus_five():
    core = make_core()
    assert torch.all(core.q_head.bias == -5.0)
    torch.testing.assert_close(core(random_x()).q_logit, torch.full((B,), -5.0))


@pytest.mark.parametrize(("T", "n"), [(1, 1), (2, 3), (3, 2)])
def test_depth_override_sets_number_of_net_calls(T, n):
    core = make_core(T=2, n=2)
    calls = []
    core.net.register_forward_hook(lambda *_: calls.append(1))
    core(random_x(), T=T, n=n)
    assert len(calls) == T * (n + 1)


def test_depth_override_changes_the_answer():
    core, x = make_core(T=2, n=2), random_x()
    default = core(x).y
    torch.testing.assert_close(core(x, T=2, n=2).y, default)
    assert not torch.allclose(core(x, T=3).y, default)
    assert not torch.allclose(core(x, n=3).y, default)


def test_depth_override_must_be_positive():
    with pytest.raises(ValueError, match="T and n"):
        make_core()(random_x(), T=0)


def test_preset_parameter_counts_match_the_size_table():
    table = {"tiny": 2e6, "small": 32e6, "base": 99e6, "large": 329e6}
    counts = preset_parameter_counts()
    assert counts.keys() == table.keys()
    for name, target in table.items():
        assert abs(counts[name] / target - 1) <= 0.25, (name, counts[name])


def test_presets_use_official_depth_and_unknown_name_lists_valid_ones():
    assert all((TRMConfig(preset=name).T, TRMConfig(preset=name).n) == (3, 6) for name in PRESETS)
    assert TRMConfig(preset="small").hidden_size == 512
    with pytest.raises(ConfigError, match=r"^preset: .*'tiny', 'small', 'base' or 'large'"):
        parse_config({"preset": "huge"}, TRMConfig)


def test_fields_given_beside_a_preset_override_it():
    config = parse_config({"preset": "small", "T": 2, "num_layers": 4}, TRMConfig)
    assert (config.hidden_size, config.num_heads, config.T, config.n, config.num_layers) == (512, 8, 2, 6, 4)
    assert parse_config(config.model_dump(), TRMConfig) == config  # a resolved config reloads as itself


def test_the_mlp_mixer_and_the_token_model_need_a_sequence_length():
    with pytest.raises(ValueError, match="seq_len"):
        TRMCore(TRMConfig(hidden_size=H, num_heads=2, mixer="mlp"))
    with pytest.raises(ValueError, match="seq_len"):
        TRMTokenModel(TRMConfig(hidden_size=H, num_heads=2), VOCAB)
    assert TRMCore(TRMConfig(hidden_size=H, num_heads=2))(random_x()).y.shape == (B, L, H)  # attention: any length


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("num_heads", {"hidden_size": 12, "num_heads": 5}),
        ("num_heads", {"hidden_size": 10}),  # the default 4 heads
        ("T", {"T": 0}),
        ("n", {"n": 0}),
        ("mixer", {"mixer": "conv"}),
        ("num_layers", {"num_layers": 0}),
        ("expansion", {"expansion": 0.0}),
    ],
)
def test_invalid_config_names_the_field(field, kwargs):
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        parse_config(kwargs, TRMConfig)
