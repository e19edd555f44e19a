import numpy as np

from textgen.data.windows import (
    LabelsBefore,
    make_windows,
    split_input_target,
    training_dataset,
    validation_dataset,
)


def test_targets_are_inputs_shifted_by_one():
    window = np.arange(10)
    inputs, targets = split_input_target(window)
    np.testing.assert_array_equal(inputs, np.arange(9))
    np.testing.assert_array_equal(targets, np.arange(1, 10))


def test_windows_are_contiguous_and_drop_the_remainder():
    windows = make_windows(np.arange(23), seq_len=4)
    assert windows.shape == (4, 5)
    np.testing.assert_array_equal(windows[1], [5, 6, 7, 8, 9])


def test_training_batches_have_shape_and_shift():
    ids = np.arange(1000) % 97
    inputs, targets = next(iter(training_dataset(ids, seq_len=9, batch_size=4, seed=1)))
    assert inputs.shape == (4, 9) and targets.shape == (4, 9)
    np.testing.assert_array_equal((inputs.numpy()[:, 1:]), targets.numpy()[:, :-1])


def _first_batches(seed, n=5):
    ds = training_dataset(np.arange(2000), seq_len=9, batch_size=4, seed=seed)
    return [b[0].numpy() for b in ds.take(n)]


def test_training_order_is_deterministic_under_a_seed_and_differs_across_seeds():
    same = _first_batches(3)
    np.testing.assert_array_equal(np.stack(same), np.stack(_first_batches(3)))
    assert not np.array_equal(np.stack(same), np.stack(_first_batches(4)))


def test_validation_covers_every_window_once_in_order():
    batches = list(validation_dataset(np.arange(105), seq_len=9, batch_size=4))
    firsts = np.concatenate([inputs.numpy()[:, 0] for inputs, _ in batches])
    np.testing.assert_array_equal(firsts, np.arange(0, 100, 10))


def _window_firsts(dataset, batches):
    return np.concatenate([inputs.numpy()[:, 0] for inputs, _ in dataset.take(batches)])


def test_each_pass_visits_every_window_once_in_a_new_order():
    ids = np.arange(10 * 40)  # 40 windows of 10; a window is known by its first id
    firsts = _window_firsts(training_dataset(ids, seq_len=9, batch_size=8, seed=0), 10)
    first_pass, second_pass = firsts[:40], firsts[40:]
    np.testing.assert_array_equal(np.sort(first_pass), np.arange(0, 400, 10))
    np.testing.assert_array_equal(np.sort(second_pass), np.arange(0, 400, 10))
    assert not np.array_equal(first_pass, second_pass)
    assert not np.array_equal(first_pass, np.arange(0, 400, 10))


def test_batches_read_from_a_memory_mapped_file(tmp_path):
    ids = (np.arange(5000) % 251).astype(np.uint8)
    ids.tofile(tmp_path / "ids.uint8")
    mapped = np.memmap(tmp_path / "ids.uint8", dtype=np.uint8, mode="r")
    from_file = _window_firsts(training_dataset(mapped, 9, 4, seed=2), 5)
    np.testing.assert_array_equal(from_file, _window_firsts(training_dataset(ids, 9, 4, 2), 5))


def test_stateful_batches_continue_each_stream_where_the_last_batch_ended():
    from textgen.data.windows import stateful_dataset, stream_windows_per_pass

    ids = np.arange(4 * 50)  # 4 streams of 50 ids: stream b is 50b .. 50b+49
    per_pass = stream_windows_per_pass(len(ids), seq_len=9, batch_size=4)
    assert per_pass == 5  # (50 - 1) // 9
    batches = [(x.numpy(), y.numpy()) for x, y in stateful_dataset(ids, 9, 4).take(per_pass + 1)]
    for (x0, y0), (x1, _) in zip(batches, batches[1:per_pass]):
        np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)  # contiguous, row by row
        np.testing.assert_array_equal(y0, x0 + 1)
    np.testing.assert_array_equal(batches[0][0][:, 0], [0, 50, 100, 150])
    np.testing.assert_array_equal(batches[per_pass][0], batches[0][0])  # the next pass


def test_windows_with_labels_carry_the_label_in_mind_before_each_window():
    # each position's id is the position itself, so a window's first id says where it starts
    rng = np.random.default_rng(0)
    ids = np.arange(3000, dtype=np.int32)
    roles = rng.choice([0, 0, 0, 0, 0, -1, 1, 2, 3], size=3000).tolist()

    def in_mind(position: int) -> int:  # the last setting token before it, by hand
        for earlier in range(position - 1, -1, -1):
            if roles[earlier]:
                return max(roles[earlier], 0)
        return 0

    labels = LabelsBefore(ids, roles)
    batches = training_dataset(ids, seq_len=29, batch_size=8, seed=3, labels=labels).take(20)
    validation = validation_dataset(ids, seq_len=29, batch_size=8, labels=labels)
    checked = 0
    for (inputs, before), targets in [*batches, *validation]:
        np.testing.assert_array_equal(inputs.numpy()[:, 1:], targets.numpy()[:, :-1])
        for row, label in zip(inputs.numpy(), before.numpy()):
            assert label == in_mind(int(row[0]))
            checked += int(label != 0)
    assert checked > 100
    assert labels(np.array([0])).tolist() == [0]
