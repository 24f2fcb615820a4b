"""Planner contract: bounds, reproducibility, better than random where the optimum is known."""

import pytest
import torch
import torch.nn.functional as F

from agents.planners import CEMPlanner, MPPIPlanner, Plan
from worldmodel.actions import ActionSpec
from worldmodel.objectives import lambda_returns


class LinearWorld:
    """A known latent system: z' = z + 0.5 a (continuous) or z + 0.5 * (index - 1) on axis 0
    (3 discrete actions); reward -||z' - goal||². Nothing terminates; value 0."""

    def __init__(self, discrete: bool, dim: int = 2):
        self.discrete, self.dim = discrete, dim
        self.action_spec = ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", dim)
        self.action_dim = self.action_spec.dim
        self.goal = torch.tensor([1.0] + [0.0] * (dim - 1))
        self.has_policy = False

    def _move(self, a):
        if self.discrete:
            delta = torch.zeros(a.shape[0], self.dim)
            delta[:, 0] = 0.5 * (a.argmax(-1).float() - 1.0)
            return delta
        return 0.5 * a

    def step(self, z, a):
        return z + self._move(a)

    def transition(self, z, a):
        nxt = self.step(z, a)
        return nxt, -(nxt - self.goal).square().sum(-1), torch.zeros(z.shape[0])

    def value(self, z, optimism=0.0):
        return torch.zeros(z.shape[0])


def rollout_return(world, z, actions):
    total = torch.zeros(z.shape[0])
    for h in range(actions.shape[1]):
        z, r, _ = world.transition(z, actions[:, h])
        total += r
    return total


def make(kind, world, **kw):
    args = {"horizon": 4, "samples": 128, "iterations": 4, "elites": 16, "discount": 1.0, "min_std": 0.05,
            "max_std": 1.0}
    args.update(kw)
    return {"mppi": MPPIPlanner, "cem": CEMPlanner}[kind](world, **args)


@pytest.mark.parametrize("kind", ["mppi", "cem"])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("act_from", ["mean", "elite"])
def test_actions_in_bounds_and_reproducible(kind, discrete, act_from):
    world = LinearWorld(discrete)
    planner = make(kind, world, act_from=act_from)
    z = torch.randn(5, 2)
    a1, plan1 = planner.plan(z, generator=torch.Generator().manual_seed(3))
    a2, plan2 = planner.plan(z, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(plan1.mean, plan2.mean)
    assert a1.shape == (5, world.action_dim)
    if discrete:
        assert torch.all(a1.sum(-1) == 1) and set(a1.unique().tolist()) <= {0.0, 1.0}
    else:
        assert a1.min() >= -1 and a1.max() <= 1
        a_eval, _ = planner.plan(z, eval=True, generator=torch.Generator().manual_seed(3))
        assert a_eval.min() >= -1 and a_eval.max() <= 1


@pytest.mark.parametrize("kind", ["mppi", "cem"])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("act_from", ["mean", "elite"])
def test_planned_sequences_beat_random_and_head_for_the_goal(kind, discrete, act_from):
    torch.manual_seed(0)
    world = LinearWorld(discrete)
    planner = make(kind, world, act_from=act_from)
    z = torch.zeros(16, 2)
    _, plan = planner.plan(z, generator=torch.Generator().manual_seed(0))
    if discrete:
        planned = F.one_hot(plan.mean.argmax(-1), 3).float()
        random = F.one_hot(torch.randint(3, (16, 4)), 3).float()
    else:
        planned = plan.mean.clamp(-1, 1)
        random = torch.rand(16, 4, 2) * 2 - 1
    assert rollout_return(world, z, planned).mean() > rollout_return(world, z, random).mean() + 0.5
    # The optimum: reach the goal (1, 0) in two steps of 0.5 and stay: return -0.25 - 0 - 0 - 0.
    assert rollout_return(world, z, planned).mean() > -0.6
    first, _ = planner.plan(z, eval=True, generator=torch.Generator().manual_seed(1))
    if discrete:
        assert (first.argmax(-1) == 2).float().mean() > 0.9  # "right"
    else:
        assert first[:, 0].mean() > 0.6 and first[:, 1].abs().mean() < 0.3


class TwoWays(LinearWorld):
    """Two equally good plans: reward z'² on a line, so moving fully left or fully right is best and
    standing still is worst (a pendulum at rest at the bottom can swing up either way)."""

    def transition(self, z, a):
        nxt = z + 0.5 * a
        return nxt, nxt.square().sum(-1), torch.zeros(z.shape[0])


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_elite_action_takes_one_good_plan_where_the_mean_averages_two(kind):
    world = TwoWays(False, dim=1)
    z = torch.zeros(64, 1)
    actions = {}
    for act_from in ("mean", "elite"):
        planner = make(kind, world, horizon=2, samples=128, iterations=2, elites=16, act_from=act_from)
        actions[act_from], _ = planner.plan(z, eval=True, generator=torch.Generator().manual_seed(0))
    # Each elite action is one of the two good plans; the means sit between them.
    assert actions["elite"].abs().min() > 0.5
    assert actions["mean"].abs().mean() < actions["elite"].abs().mean() - 0.3
    # Both directions get chosen across envs: the draw does not prefer a side.
    assert (actions["elite"] > 0).float().mean().item() == pytest.approx(0.5, abs=0.25)


def test_unknown_act_from_is_an_error():
    with pytest.raises(ValueError, match="act_from='best'"):
        make("mppi", LinearWorld(False), act_from="best")


def test_warm_start_shifts_the_plan():
    world = LinearWorld(False)
    planner = make("mppi", world)
    mean = torch.arange(4.0).view(1, 4, 1).expand(1, 4, 2) / 10
    shifted = planner.shift(Plan(mean, torch.full_like(mean, 0.1)))
    torch.testing.assert_close(shifted.mean[:, :3], mean[:, 1:])
    assert torch.all(shifted.mean[:, 3] == 0) and torch.all(shifted.std == planner.max_std)


def test_termination_cuts_the_planned_return():
    class Cliff(LinearWorld):
        def transition(self, z, a):
            nxt, reward, _ = super().transition(z, a)
            ends = (nxt[:, 0] > 0.2).float()  # moving right falls off after the first step
            return nxt, reward + 1.0, ends

    world = Cliff(False)
    planner = make("cem", world, discount=0.9)
    z = torch.zeros(2, 2)
    right = torch.zeros(2, 3, 4, 2)
    right[..., 0] = 1.0
    scores = planner.score(z, right)
    # Only the first step's reward counts: the episode ends there.
    first_reward = -(torch.tensor([0.5, 0.0]) - world.goal).square().sum() + 1.0
    torch.testing.assert_close(scores, torch.full((2, 3), float(first_reward)))


def test_the_score_adds_the_discounted_value_at_the_horizon_unless_terminated():
    class Valued(LinearWorld):
        """No reward; a value of 10 everywhere; with `cliff`, every move ends the episode."""

        def __init__(self, cliff):
            super().__init__(False)
            self.cliff = cliff

        def transition(self, z, a):
            return z + 0.5 * a, torch.zeros(z.shape[0]), torch.full((z.shape[0],), float(self.cliff))

        def value(self, z, optimism=0.0):
            return torch.full((z.shape[0],), 10.0)

    actions = torch.zeros(2, 3, 4, 2)
    scores = make("mppi", Valued(False), discount=0.9).score(torch.zeros(2, 2), actions)
    torch.testing.assert_close(scores, torch.full((2, 3), 0.9**4 * 10.0))
    scores = make("mppi", Valued(True), discount=0.9).score(torch.zeros(2, 2), actions)
    torch.testing.assert_close(scores, torch.zeros(2, 3))


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_optimism_raises_the_value_training_plans_read_and_leaves_evaluation_plans_alone(kind):
    class Uncertain(LinearWorld):
        """No reward; a value of 10 whose heads disagree by 2 (a spread of 1 either side of it)."""

        def __init__(self):
            super().__init__(False)
            self.read = set()

        def transition(self, z, a):
            return z + 0.5 * a, torch.zeros(z.shape[0]), torch.zeros(z.shape[0])

        def value(self, z, optimism=0.0):
            self.read.add(optimism)
            return torch.full((z.shape[0],), 10.0 + optimism * 1.0)

    world, actions = Uncertain(), torch.zeros(2, 3, 4, 2)
    planner = make(kind, world, discount=0.9, optimism=2.0)
    torch.testing.assert_close(planner.score(torch.zeros(2, 2), actions, 2.0), torch.full((2, 3), 0.9**4 * 12.0))
    world.read.clear()
    planner.plan(torch.zeros(2, 2), eval=True, generator=torch.Generator().manual_seed(0))
    assert world.read == {0.0}  # evaluation plans read the mean
    planner.plan(torch.zeros(2, 2), eval=False, generator=torch.Generator().manual_seed(0))
    assert world.read == {0.0, 2.0}


def test_refit_weights_cem_equal_on_the_elites_mppi_softmax_of_scaled_scores():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0, -1.0]])
    cem = make("cem", LinearWorld(False), elites=3)._weights(scores)
    torch.testing.assert_close(cem, torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0.0, 0.0]]))
    mppi = make("mppi", LinearWorld(False), elites=3, temperature=0.5)._weights(scores)
    assert torch.allclose(mppi.sum(1), torch.ones(1)) and mppi[0, 3] == 0 and mppi[0, 4] == 0
    scale = 0.5 * scores.std()
    torch.testing.assert_close(mppi[0, 0] / mppi[0, 2], torch.exp((3.0 - 2.0) / scale))
    torch.testing.assert_close(mppi[0, 2] / mppi[0, 1], torch.exp((2.0 - 1.0) / scale))


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_the_policy_priors_proposals_steer_the_plan(kind):
    """With two random candidates per round and an optimal prior, the plan follows the prior."""
    z = torch.zeros(8, 2)
    g = torch.Generator().manual_seed(0)
    with_prior = make(kind, PolicyWorld(False), samples=10, elites=4, iterations=2, policy_samples=8)
    without = make(kind, LinearWorld(False), samples=10, elites=4, iterations=2)
    towards = torch.tanh(PolicyWorld(False).goal)  # the prior's first action from z = 0
    error_with = (with_prior.plan(z, eval=True, generator=g)[0] - towards).abs().mean()
    error_without = (without.plan(z, eval=True, generator=g)[0] - towards).abs().mean()
    assert error_with < 0.1 < error_without


def test_value_targets_stop_at_termination_but_not_at_truncation():
    rewards = torch.tensor([[1.0, 1.0, 1.0]])
    next_values = torch.tensor([[10.0, 10.0, 10.0]])
    # Terminated on arriving at the 2nd state: no value after it, and nothing from beyond.
    terminated = torch.tensor([[0.0, 1.0, 0.0]])
    targets = lambda_returns(rewards, next_values, terminated, discount=0.9, lam=0.0)
    torch.testing.assert_close(targets, torch.tensor([[1.0 + 0.9 * 10.0, 1.0, 1.0 + 0.9 * 10.0]]))
    # A sequence that ends (time limit, i.e. truncated) still bootstraps from the last value.
    targets = lambda_returns(rewards, next_values, torch.zeros(1, 3), discount=0.9, lam=1.0)
    expected_last = 1.0 + 0.9 * 10.0
    expected_mid = 1.0 + 0.9 * expected_last
    torch.testing.assert_close(targets, torch.tensor([[1.0 + 0.9 * expected_mid, expected_mid, expected_last]]))


class PolicyWorld(LinearWorld):
    """LinearWorld with a policy prior: towards the goal (continuous), or logits favouring "right"
    more the further left z is (discrete)."""

    def __init__(self, discrete: bool):
        super().__init__(discrete)
        self.has_policy = True

    def policy(self, z, sample=False, generator=None, noise=None):
        if not self.discrete:
            return torch.tanh(self.goal - z)
        logits = (self.goal[0] - z[:, :1]) * torch.tensor([-1.0, 0.0, 1.0])
        return F.one_hot((logits if noise is None else logits + noise).argmax(-1), 3).float()


def tiny_world_model(discrete: bool, prior: bool):
    from worldmodel.config import Config
    from worldmodel.model import WorldModel

    torch.manual_seed(0)
    cfg = Config.from_preset("debug", image_size=32, enc_stem=2, policy_prior=prior)
    return WorldModel(cfg, ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", 2)).eval()


def streams(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("kind", ["mppi", "cem"])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("prior", [False, True])
@pytest.mark.parametrize("world", ["linear", "model"])
@pytest.mark.parametrize("act_from", ["mean", "elite"])
def test_batched_planning_equals_per_env_planning_under_a_fixed_seed(kind, discrete, prior, world, act_from):
    if world == "linear":
        model = PolicyWorld(discrete) if prior else LinearWorld(discrete)
        z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    else:
        model = tiny_world_model(discrete, prior)
        z = torch.randn(3, model.cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    planner = make(kind, model, samples=32, elites=6, iterations=3, policy_samples=4 if prior else 0,
                   act_from=act_from)
    assert planner.policy_samples == (4 if prior else 0)
    seeds = [11, 22, 33]

    def two_steps(rows, generators):
        """Plan, warm-start, plan again (exploration on): every draw of the two calls."""
        action, plan = planner.plan(z[rows], generator=generators)
        action2, plan2 = planner.plan(z[rows], planner.shift(plan), generator=generators)
        return action, plan, action2, plan2

    batched = two_steps(slice(0, 3), streams(seeds))
    for i in range(3):
        alone = two_steps(slice(i, i + 1), streams(seeds[i:i + 1]))
        for got, want in zip(alone, batched):
            if isinstance(got, Plan):
                torch.testing.assert_close(got.mean, want.mean[i:i + 1], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(got.std, want.std[i:i + 1], atol=1e-5, rtol=1e-5)
            else:
                torch.testing.assert_close(got, want[i:i + 1], atol=1e-5, rtol=1e-5)


def test_one_generator_or_a_list_of_one_draw_the_same_for_a_single_env():
    planner = make("mppi", PolicyWorld(False), policy_samples=4)
    z = torch.randn(1, 2)
    a, plan = planner.plan(z, generator=torch.Generator().manual_seed(5))
    b, plan_b = planner.plan(z, generator=streams([5]))
    assert torch.equal(a, b) and torch.equal(plan.mean, plan_b.mean)


def test_per_env_streams_must_match_the_batch():
    planner = make("cem", LinearWorld(False))
    with pytest.raises(ValueError, match="got 2 generators for 3 rows"):
        planner.plan(torch.zeros(3, 2), generator=streams([1, 2]))


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_novelty_rewards_unfamiliar_latents_in_training_plans_only(kind):
    class Curious(LinearWorld):
        """No reward; latents on the positive side of axis 0 read as novel (1 per unit), the rest as 0."""

        def __init__(self):
            super().__init__(False)
            self.asked = 0

        def transition(self, z, a):
            return z + 0.5 * a, torch.zeros(z.shape[0]), torch.zeros(z.shape[0])

        def novelty(self, z):
            self.asked += 1
            return z[:, 0].clamp_min(0.0)

    world = Curious()
    planner = make(kind, world, discount=0.5, novelty=2.0)
    actions = torch.ones(1, 1, 4, 2)  # z_h = 0.5 h on each axis after step h
    expected = sum(0.5**h * 2.0 * 0.5 * (h + 1) for h in range(4))
    torch.testing.assert_close(planner.score(torch.zeros(1, 2), actions, novelty=2.0), torch.tensor([[expected]]))
    torch.testing.assert_close(planner.score(torch.zeros(1, 2), actions), torch.zeros(1, 1))
    action, _ = planner.plan(torch.zeros(3, 2), eval=False, generator=torch.Generator().manual_seed(0))
    assert (action[:, 0] > 0.5).all()  # drawn to the novel side
    world.asked = 0
    planner.plan(torch.zeros(3, 2), eval=True, generator=torch.Generator().manual_seed(0))
    assert world.asked == 0  # evaluation plans never read novelty
