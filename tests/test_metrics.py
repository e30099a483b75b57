"""edgeforge.metrics against values worked out by hand on small masks and score rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeforge.metrics import (
    ClassificationScores,
    SegmentationScores,
    boundaries,
    dilate,
    kl_divergence,
)

# 3 classes on a 3x4 map. Rows are the reference, columns the prediction:
#   ref 0: pred 0 at (0,0) (1,0) (1,1), pred 1 at (0,1)        -> 3 right, 1 wrong
#   ref 1: pred 1 at all four pixels                          -> 4 right
#   ref 2: pred 2 at (2,0) (2,1) (2,2), pred 0 at (2,3)        -> 3 right, 1 wrong
REFERENCE = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1],
                      [2, 2, 2, 2]], dtype=np.uint8)
PREDICTION = np.array([[0, 1, 1, 1],
                       [0, 0, 1, 1],
                       [2, 2, 2, 0]], dtype=np.uint8)
# IoU = intersection / (ref pixels + pred pixels - intersection):
#   class 0: 3 / (4 + 4 - 3) = 0.6;  class 1: 4 / (4 + 5 - 4) = 0.8;  class 2: 3 / (4 + 3 - 3) = 0.75
HAND_IOU = [0.6, 0.8, 0.75]
HAND_MIOU = (0.6 + 0.8 + 0.75) / 3  # 0.71666...
HAND_AGREEMENT = 10 / 12


def scores_of(reference, prediction, num_classes=3, **options) -> SegmentationScores:
    scores = SegmentationScores(num_classes, **options)
    scores.update(reference, prediction)
    return scores


def test_confusion_matrix_counts_reference_rows_and_prediction_columns():
    scores = scores_of(REFERENCE, PREDICTION)
    assert scores.confusion.tolist() == [[3, 1, 0], [0, 4, 0], [1, 0, 3]]


def test_per_class_iou_miou_and_pixel_agreement_match_hand_values():
    scores = scores_of(REFERENCE, PREDICTION)
    assert scores.per_class_iou() == pytest.approx(HAND_IOU)
    assert scores.miou() == pytest.approx(HAND_MIOU)
    assert scores.miou() == pytest.approx(0.716666667)
    assert scores.pixel_agreement() == pytest.approx(HAND_AGREEMENT)


def test_identical_maps_score_perfectly():
    scores = scores_of(REFERENCE, REFERENCE)
    assert scores.miou() == 1.0 and scores.pixel_agreement() == 1.0 and scores.boundary_f1() == 1.0


def test_class_absent_from_both_maps_is_nan_and_left_out_of_the_mean():
    scores = scores_of(REFERENCE, PREDICTION, num_classes=5)
    iou = scores.per_class_iou()
    assert iou[:3] == pytest.approx(HAND_IOU)
    assert np.isnan(iou[3]) and np.isnan(iou[4])
    assert scores.miou() == pytest.approx(HAND_MIOU)


def test_class_only_in_the_prediction_counts_as_zero_iou():
    # Prediction paints class 3 over one class-1 pixel: class 3 has IoU 0 and drags the mean down;
    # class 1 loses that pixel: 3 / (4 + 4 - 3) = 0.6.
    prediction = PREDICTION.copy()
    prediction[0, 3] = 3
    scores = scores_of(REFERENCE, prediction, num_classes=4)
    assert scores.per_class_iou() == pytest.approx([0.6, 0.6, 0.75, 0.0])
    assert scores.miou() == pytest.approx((0.6 + 0.6 + 0.75 + 0.0) / 4)


def test_ignored_reference_pixels_are_left_out():
    reference = REFERENCE.copy()
    reference[2, 3] = 255  # the one class-2 pixel predicted as 0 is now "don't care"
    scores = scores_of(reference, PREDICTION)
    # class 0: 3 / (4 + 3 - 3) = 0.75;  class 1: 0.8 as before;  class 2: 3 / (3 + 3 - 3) = 1.0
    assert scores.per_class_iou() == pytest.approx([0.75, 0.8, 1.0])
    assert scores.pixel_agreement() == pytest.approx(10 / 11)


def test_streaming_over_several_images_equals_one_pooled_confusion_matrix():
    scores = SegmentationScores(3)
    scores.update(REFERENCE, PREDICTION)
    scores.update(REFERENCE, REFERENCE)
    # Pooled: class 0: 7 / (8 + 8 - 7);  class 1: 8 / (8 + 9 - 8);  class 2: 7 / (8 + 7 - 7)
    assert scores.per_class_iou() == pytest.approx([7 / 9, 8 / 9, 7 / 8])
    assert scores.pixel_agreement() == pytest.approx(22 / 24)


def test_out_of_range_class_ids_are_refused_instead_of_landing_in_another_cell():
    prediction = PREDICTION.copy()
    prediction[0, 0] = 3  # with 3 classes, ref 0 * 3 + 3 would count as (ref 1, pred 0)
    with pytest.raises(ValueError, match="outside 0..2"):
        scores_of(REFERENCE, prediction)
    with pytest.raises(ValueError, match="differ in shape"):
        scores_of(REFERENCE, PREDICTION[:, :3])


def test_boundaries_mark_both_sides_of_each_edge():
    label_map = np.array([[0, 0, 1, 1]])
    assert boundaries(label_map).tolist() == [[False, True, True, False]]
    square = np.zeros((4, 4), dtype=np.uint8)
    square[1:3, 1:3] = 1
    # Every pixel of the 2x2 square touches the background and vice versa, except the corners of the
    # 4x4 map (diagonal neighbours do not count).
    expected = np.ones((4, 4), dtype=bool)
    expected[[0, 0, 3, 3], [0, 3, 0, 3]] = False
    assert np.array_equal(boundaries(square), expected)


def test_dilate_grows_a_pixel_into_its_square_neighbourhood():
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    assert dilate(mask, 1).sum() == 9
    assert dilate(mask, 2).sum() == 25
    assert dilate(mask, 0).sum() == 1


def test_boundary_f1_on_one_row_with_and_without_tolerance():
    reference = np.array([[0, 0, 1, 1]])  # edge pixels: columns 1, 2
    prediction = np.array([[0, 1, 1, 1]])  # edge pixels: columns 0, 1
    # Tolerance 0: one of two predicted edge pixels is on a reference edge (column 1) and vice versa:
    # precision 1/2, recall 1/2, F1 1/2.
    assert scores_of(reference, prediction, num_classes=2, boundary_tolerance=0).boundary_f1() == pytest.approx(0.5)
    # Tolerance 1: every edge pixel has one of the other map within a pixel: F1 1.
    assert scores_of(reference, prediction, num_classes=2, boundary_tolerance=1).boundary_f1() == pytest.approx(1.0)


def test_boundary_f1_on_a_shifted_vertical_edge():
    reference = np.zeros((6, 6), dtype=np.uint8)
    reference[:, 3:] = 1  # edge pixels in columns 2 and 3: 12
    prediction = np.zeros((6, 6), dtype=np.uint8)
    prediction[:, 5:] = 1  # edge pixels in columns 4 and 5: 12
    # Tolerance 1: reference edges grown to columns 1..4 cover the predicted column 4 only -> precision 6/12;
    # predicted edges grown to columns 3..5 cover the reference column 3 only -> recall 6/12. F1 = 0.5.
    scores = scores_of(reference, prediction, num_classes=2, boundary_tolerance=1)
    assert scores.boundary_f1() == pytest.approx(0.5)
    # Tolerance 2 covers both columns either way.
    assert scores_of(reference, prediction, num_classes=2, boundary_tolerance=2).boundary_f1() == pytest.approx(1.0)


def test_boundary_f1_with_unequal_precision_and_recall():
    reference = np.zeros((4, 4), dtype=np.uint8)
    reference[:, 2:] = 1  # edge pixels: columns 1, 2 -> 8
    prediction = reference.copy()
    prediction[0, 0] = 1  # adds edges at (0,0), (0,1) [right neighbour], (1,0) [lower neighbour]
    # Predicted edge pixels: columns 1, 2 (8) plus (0,0) and (1,0) -> 10; with tolerance 0 only the 8 on
    # columns 1, 2 match: precision 8/10. Every reference edge pixel is also a predicted one: recall 1.
    # F1 = 2 * 0.8 * 1 / 1.8 = 8/9.
    scores = scores_of(reference, prediction, num_classes=2, boundary_tolerance=0)
    assert scores.boundary_f1() == pytest.approx(8 / 9)


def test_boundary_f1_of_maps_without_any_edge_is_perfect_and_one_sided_edges_score_zero():
    flat = np.zeros((3, 3), dtype=np.uint8)
    assert scores_of(flat, flat, num_classes=2).boundary_f1() == 1.0
    split = flat.copy()
    split[:, 2] = 1
    assert scores_of(flat, split, num_classes=2).boundary_f1() == 0.0


def test_boundary_f1_ignores_the_border_of_an_ignored_region():
    reference = np.array([[0, 0, 255, 255]], dtype=np.uint8)
    prediction = np.zeros((1, 4), dtype=np.uint8)
    # Where the reference is valid there is no boundary, and the prediction has none: a perfect match.
    assert scores_of(reference, prediction, num_classes=2).boundary_f1() == 1.0


def test_boundary_counts_accumulate_over_images():
    reference = np.array([[0, 0, 1, 1]])
    scores = SegmentationScores(2, boundary_tolerance=0)
    scores.update(reference, np.array([[0, 1, 1, 1]]))  # 1 of 2 matched each way
    scores.update(reference, reference)  # 2 of 2 matched each way
    # Pooled: precision 3/4, recall 3/4 -> F1 3/4 (not the mean of per-image F1s, 0.75 here too, so
    # check the raw counts as well).
    assert scores.boundary_f1() == pytest.approx(0.75)
    assert scores._boundary.tolist() == [3, 4, 3, 4]


# --- classification --------------------------------------------------------------------------------
REF_PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
PROBS = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
# KL(ref || probs) per row, in nats:
#   row 0: 0.7 ln(0.7/0.6) + 0.2 ln(0.2/0.3) + 0.1 ln(0.1/0.1) = 0.107905 - 0.081093 + 0 = 0.026812
#   row 1: 0.1 ln(0.1/0.5) + 0.6 ln(0.6/0.4) + 0.3 ln(0.3/0.1) = -0.160944 + 0.243279 + 0.329584 = 0.411919
HAND_KL = [0.7 * math.log(7 / 6) + 0.2 * math.log(2 / 3), 0.1 * math.log(0.2) + 0.6 * math.log(1.5) + 0.3 * math.log(3)]


def test_kl_divergence_matches_hand_values():
    assert kl_divergence(REF_PROBS, PROBS) == pytest.approx(HAND_KL)
    assert kl_divergence(REF_PROBS, PROBS) == pytest.approx([0.026812, 0.411919], abs=1e-6)
    assert kl_divergence(REF_PROBS, REF_PROBS) == pytest.approx([0.0, 0.0], abs=1e-12)
    # A certain reference against a coin flip: 1 * ln(1 / 0.5) = ln 2; the zero entry adds nothing.
    assert kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])) == pytest.approx([math.log(2)])


def test_top1_agreement_and_mean_kl():
    scores = ClassificationScores()
    scores.update(REF_PROBS, PROBS)  # argmax 0,1 vs 0,0 -> one of two agree
    assert scores.agreement() == pytest.approx(0.5)
    assert scores.mean_kl() == pytest.approx(sum(HAND_KL) / 2)
    assert scores.mean_kl() == pytest.approx(0.2193657, abs=1e-6)


def test_single_rows_count_as_one_image():
    scores = ClassificationScores()
    scores.update(REF_PROBS[0], PROBS[0])
    scores.update(REF_PROBS[1], PROBS[1])
    assert scores.total == 2
    assert scores.agreement() == pytest.approx(0.5)
    assert scores.mean_kl() == pytest.approx(sum(HAND_KL) / 2)


def test_accuracy_against_labels_and_no_kl_without_reference_scores():
    scores = ClassificationScores()
    scores.update_labels(np.array([0, 2]), PROBS)  # predicted 0, 0 -> one right
    scores.update_labels(1, PROBS[1])  # predicted 0 -> wrong
    assert scores.agreement() == pytest.approx(1 / 3)
    assert math.isnan(scores.mean_kl())  # no reference distribution was given: no KL, not "0 nats"


def test_empty_scores_are_nan():
    assert math.isnan(ClassificationScores().agreement())
    assert math.isnan(SegmentationScores(3).miou())
    assert math.isnan(SegmentationScores(3).pixel_agreement())
