import pytest

from guild_jupyter import sweeps
from guild_jupyter.errors import FlagError, SweepError
from guild_jupyter.sweeps import Choices, Uniform, Value, expand, parse_assignments, parse_flag_value


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", 1),
        ("-3", -3),
        ("0.1", 0.1),
        ("1e-4", 1e-4),
        ("-2.5e3", -2500.0),
        ("yes", True),
        ("false", False),
        ("null", None),
        ("adam", "adam"),
        ("'42'", "42"),
        ('"a,b"', "a,b"),
    ],
)
def test_flag_values_are_typed(text, value):
    got = parse_flag_value(text)
    assert got == value and type(got) is type(value)


def test_a_list_flag_expands_in_order():
    specs = parse_assignments(["lr=[0.1,0.01,0.001]", "epochs=5"])
    assert specs == {"lr": Choices((0.1, 0.01, 0.001)), "epochs": Value(5)}
    assert expand(specs) == [{"lr": 0.1, "epochs": 5}, {"lr": 0.01, "epochs": 5}, {"lr": 0.001, "epochs": 5}]


def test_two_list_flags_make_a_full_grid_first_flag_slowest():
    trials = expand(parse_assignments(["a=[1,2]", "b=[x, y, z]"]))
    assert trials == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]


def test_range_is_end_inclusive():
    assert expand(parse_assignments(["e=range[1:10:2]"])) == [{"e": v} for v in (1, 3, 5, 7, 9)]
    assert expand(parse_assignments(["e=range[1:3]"])) == [{"e": v} for v in (1, 2, 3)]
    assert [t["x"] for t in expand(parse_assignments(["x=range[0:0.3:0.1]"]))] == [0.0, 0.1, 0.2, 0.3]
    assert [t["x"] for t in expand(parse_assignments(["x=range[3:1:-1]"]))] == [3, 2, 1]


def test_linspace_and_logspace():
    assert [t["lr"] for t in expand(parse_assignments(["lr=linspace[0:1:5]"]))] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [t["lr"] for t in expand(parse_assignments(["lr=logspace[-4:-1:4]"]))] == [0.0001, 0.001, 0.01, 0.1]


def test_random_search_is_reproducible_and_in_bounds():
    specs = parse_assignments(["lr=loguniform[1e-4:1e-1]", "d=uniform[0:1]", "opt=[sgd,adam]"])
    assert isinstance(specs["lr"], Uniform) and specs["lr"].log
    a = expand(specs, max_trials=30, random_seed=7)
    b = expand(specs, max_trials=30, random_seed=7)
    c = expand(specs, max_trials=30, random_seed=8)
    assert a == b and a != c and len(a) == 30
    assert all(1e-4 <= t["lr"] <= 1e-1 and 0 <= t["d"] <= 1 and t["opt"] in ("sgd", "adam") for t in a)
    assert len(expand(specs)) == sweeps.DEFAULT_RANDOM_TRIALS


def test_max_trials_truncates_a_grid():
    assert expand(parse_assignments(["a=[1,2,3]", "b=[1,2]"]), max_trials=4) == [
        {"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 1}, {"a": 2, "b": 2}
    ]


def test_nested_lists_are_list_values():
    assert expand(parse_assignments(["layers=[[1,2],[3]]"])) == [{"layers": [1, 2]}, {"layers": [3]}]


@pytest.mark.parametrize(
    "args, error",
    [
        (["lr"], FlagError),
        (["=1"], FlagError),
        (["lr=1", "lr=2"], FlagError),
        (["bad name=1"], FlagError),
        (["lr=["], SweepError),
        (["lr=[1,2"], SweepError),
        (["lr=[]"], SweepError),
        (["lr=[1,,2]"], SweepError),
        (["e=range[1:0:1]"], SweepError),
        (["e=range[1:5:0]"], SweepError),
        (["e=range[a:5]"], SweepError),
        (["lr=uniform[0.1:0.01]"], SweepError),
        (["lr=uniform[1:1]"], SweepError),
        (["lr=loguniform[0:1]"], SweepError),
        (["lr=linspace[0:1:0]"], SweepError),
        (["lr=linspace[0:1]"], SweepError),
        (["lr=linspace[0:1:2.5]"], SweepError),
        (["lr=linspase[0:1:5]"], SweepError),
        (["lr=uniform[0:1"], SweepError),
    ],
)
def test_malformed_input_is_rejected(args, error):
    with pytest.raises(error) as e:
        expand(parse_assignments(args))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("n", [0, -1, True, "3"])
def test_max_trials_must_be_a_positive_int(n):
    with pytest.raises(SweepError):
        expand(parse_assignments(["a=[1,2]"]), max_trials=n)


def test_a_huge_grid_is_refused_before_expanding():
    with pytest.raises(SweepError, match="more than"):
        expand(parse_assignments(["a=range[1:1000]", "b=range[1:1000]"]))
