"""HRP after the covariance, compiled with numba: distances, linkage, leaf order, bisection.

One call per decision (``hrp_weights``) replaces scipy's linkage, optimal leaf ordering and
leaf list plus a Python bisection, whose per-call validation and interpreter loops cost ~1 ms
of a 20-asset decision. The leaf ORDER must be scipy's bit for bit (a different order moves
the weights far more than rounding), so each routine follows scipy's own algorithm and
floating-point operations in the same order:

- single: ``_hierarchy.mst_single_linkage`` (Prim's MST, then a stable sort and relabel);
- complete, average, weighted, ward: ``_hierarchy.nn_chain`` (nearest-neighbour chain, then
  the same stable sort and relabel);
- centroid, median: ``_hierarchy.fast_linkage`` (Muellner's generic algorithm with a binary
  heap of nearest-neighbour candidates);
- the Lance-Williams distance updates of ``_hierarchy_distance_update.pxi``;
- ``optimal_leaf_ordering``: Bar-Joseph, Gifford & Jaakkola, "Fast optimal leaf ordering for
  hierarchical clustering", Bioinformatics 17 (2001), as scipy implements it: costs ``M`` in
  float32, candidates visited in the order of a median-of-three quicksort (its tie order
  decides which of equal-cost orders wins), early exits on the sorted costs.

tests/plugins/allocation/test_hrp.py holds the leaf order equal to scipy's public
``leaves_list(linkage(..., optimal_ordering=...))`` and the weights to the Python bisection.
Imported only by ``plugins.allocation.hrp`` when it weighs, so numba loads only for HRP.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# scipy.cluster.hierarchy._LINKAGE_METHODS
METHODS = {"single": 0, "complete": 1, "average": 2, "centroid": 3, "median": 4, "ward": 5,
           "weighted": 6}
SINGLE, COMPLETE, AVERAGE, CENTROID, MEDIAN, WARD, WEIGHTED = range(7)
# scipy's "larger than any cost" in the leaf ordering (2^30, as float32)
BIG = np.float32(1073741824.0)


@numba.njit(cache=True)
def _at(n, i, j):
    """Index of the pair (i, j), i != j, in a condensed distance vector of n points."""
    if i > j:
        i, j = j, i
    return n * i - (i * (i + 1)) // 2 + (j - i - 1)


@numba.njit(cache=True)
def _merged_distance(method, d_xi, d_yi, d_xy, nx, ny, ni):
    """Distance from cluster i to the union of x and y (Lance-Williams), as scipy writes it."""
    if method == SINGLE:
        return min(d_xi, d_yi)
    if method == COMPLETE:
        return max(d_xi, d_yi)
    if method == AVERAGE:
        return (nx * d_xi + ny * d_yi) / (nx + ny)
    if method == CENTROID:
        return math.sqrt((((nx * d_xi * d_xi) + (ny * d_yi * d_yi))
                          - (nx * ny * d_xy * d_xy) / (nx + ny)) / (nx + ny))
    if method == MEDIAN:
        return math.sqrt(0.5 * (d_xi * d_xi + d_yi * d_yi) - 0.25 * d_xy * d_xy)
    if method == WARD:
        t = 1.0 / (nx + ny + ni)
        return math.sqrt((ni + nx) * t * d_xi * d_xi + (ni + ny) * t * d_yi * d_yi
                         - ni * t * d_xy * d_xy)
    return 0.5 * (d_xi + d_yi)  # WEIGHTED


@numba.njit(cache=True)
def _merge(method, n, D, size, x, y, d_xy):
    """Cluster ``x`` joins ``y`` (which keeps the merged one): sizes, and the Lance-Williams
    distance of every live cluster to the merged one."""
    nx, ny = size[x], size[y]
    size[x] = 0
    size[y] = nx + ny
    for i in range(n):
        ni = size[i]
        if ni == 0 or i == y:
            continue
        D[_at(n, i, y)] = _merged_distance(method, D[_at(n, i, x)], D[_at(n, i, y)], d_xy, nx, ny, ni)


@numba.njit(cache=True)
def distances(S):
    """Condensed ``sqrt(clip((1 - rho_ij) / 2, 0, 1))`` for i < j, ``rho`` the correlation of
    the covariance ``S``: the elementwise operations of ``estimators.correlation`` and the
    distance, so the same bits."""
    m = S.shape[0]
    sd = np.sqrt(np.diag(S))
    out = np.empty(m * (m - 1) // 2)
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            v = 0.5 * (1.0 - S[i, j] / (sd[i] * sd[j]))
            out[k] = math.sqrt(min(max(v, 0.0), 1.0))
            k += 1
    return out


@numba.njit(cache=True)
def _relabel(Z, n):
    """scipy's ``label``: rows sorted by height get the ids of the clusters they merge
    (union-find roots, smaller first) and the merged size."""
    parent = np.arange(2 * n - 1)
    size = np.ones(2 * n - 1, dtype=np.int64)
    nxt = n
    for i in range(n - 1):
        x, y = int(Z[i, 0]), int(Z[i, 1])
        while parent[x] != x:
            x = parent[x]
        while parent[y] != y:
            y = parent[y]
        Z[i, 0], Z[i, 1] = min(x, y), max(x, y)
        parent[x] = nxt
        parent[y] = nxt
        size[nxt] = size[x] + size[y]
        Z[i, 3] = size[nxt]
        nxt += 1


@numba.njit(cache=True)
def _sorted_by_height(Z, n):
    Z = Z[np.argsort(Z[:, 2], kind="mergesort")]
    _relabel(Z, n)
    return Z


@numba.njit(cache=True)
def _mst_single(dists, n):
    Z = np.empty((n - 1, 4))
    merged = np.zeros(n, dtype=np.bool_)
    D = np.full(n, np.inf)
    x, y = 0, 0
    for k in range(n - 1):
        current_min = np.inf
        merged[x] = True
        for i in range(n):
            if merged[i]:
                continue
            dist = dists[_at(n, x, i)]
            if D[i] > dist:
                D[i] = dist
            if D[i] < current_min:
                y = i
                current_min = D[i]
        Z[k, 0], Z[k, 1], Z[k, 2] = x, y, current_min
        x = y
    return _sorted_by_height(Z, n)


@numba.njit(cache=True)
def _nn_chain(dists, n, method):
    Z = np.empty((n - 1, 4))
    D = dists.copy()
    size = np.ones(n, dtype=np.int64)
    chain = np.empty(n, dtype=np.int64)
    length = 0
    x, y = 0, 0
    current_min = np.inf
    for k in range(n - 1):
        if length == 0:
            length = 1
            for i in range(n):
                if size[i] > 0:
                    chain[0] = i
                    break
        while True:
            x = chain[length - 1]
            # the previous chain member is preferred among equals, so the chain cannot cycle
            if length > 1:
                y = chain[length - 2]
                current_min = D[_at(n, x, y)]
            else:
                current_min = np.inf
            for i in range(n):
                if size[i] == 0 or x == i:
                    continue
                dist = D[_at(n, x, i)]
                if dist < current_min:
                    current_min = dist
                    y = i
            if length > 1 and y == chain[length - 2]:
                break
            chain[length] = y
            length += 1
        length -= 2
        if x > y:
            x, y = y, x
        Z[k, 0], Z[k, 1], Z[k, 2], Z[k, 3] = x, y, current_min, size[x] + size[y]
        _merge(method, n, D, size, x, y, current_min)
    return _sorted_by_height(Z, n)


@numba.njit(cache=True)
def _nearest_above(n, D, size, x):
    """The live cluster j > x nearest to x (first among equals) and its distance."""
    best, y = np.inf, -1
    for i in range(x + 1, n):
        if size[i] == 0:
            continue
        dist = D[_at(n, x, i)]
        if dist < best:
            best = dist
            y = i
    return y, best


@numba.njit(cache=True)
def _heap_swap(values, key_at, index_of, i, j):
    values[i], values[j] = values[j], values[i]
    ki, kj = key_at[i], key_at[j]
    key_at[i], key_at[j] = kj, ki
    index_of[ki], index_of[kj] = j, i


@numba.njit(cache=True)
def _sift_down(values, key_at, index_of, size, index):
    child = 2 * index + 1
    while child < size:
        if child + 1 < size and values[child + 1] < values[child]:
            child += 1
        if values[index] > values[child]:
            _heap_swap(values, key_at, index_of, index, child)
            index = child
            child = 2 * index + 1
        else:
            break


@numba.njit(cache=True)
def _heap_change(values, key_at, index_of, size, key, value):
    index = index_of[key]
    old = values[index]
    values[index] = value
    if value < old:
        parent = (index - 1) >> 1
        while index > 0 and values[parent] > values[index]:
            _heap_swap(values, key_at, index_of, index, parent)
            index = parent
            parent = (index - 1) >> 1
    else:
        _sift_down(values, key_at, index_of, size, index)


@numba.njit(cache=True)
def _fast_linkage(dists, n, method):
    """Muellner's generic algorithm (arXiv:1109.2378), as scipy's ``fast_linkage``."""
    Z = np.empty((n - 1, 4))
    D = dists.copy()
    size = np.ones(n, dtype=np.int64)
    cluster_id = np.arange(n)
    neighbor = np.empty(n - 1, dtype=np.int64)
    min_dist = np.empty(n - 1)
    for x in range(n - 1):
        neighbor[x], min_dist[x] = _nearest_above(n, D, size, x)
    values = min_dist.copy()
    key_at = np.arange(n - 1)
    index_of = np.arange(n - 1)
    hsize = n - 1
    for i in range(hsize // 2 - 1, -1, -1):
        _sift_down(values, key_at, index_of, hsize, i)
    x, y, dist = 0, 0, 0.0
    for k in range(n - 1):
        for _ in range(n - k):
            x, dist = key_at[0], values[0]
            y = neighbor[x]
            if dist == D[_at(n, x, y)]:
                break
            y, dist = _nearest_above(n, D, size, x)
            neighbor[x] = y
            min_dist[x] = dist
            _heap_change(values, key_at, index_of, hsize, x, dist)
        _heap_swap(values, key_at, index_of, 0, hsize - 1)
        hsize -= 1
        _sift_down(values, key_at, index_of, hsize, 0)
        id_x, id_y = cluster_id[x], cluster_id[y]
        Z[k, 0], Z[k, 1], Z[k, 2], Z[k, 3] = min(id_x, id_y), max(id_x, id_y), dist, size[x] + size[y]
        _merge(method, n, D, size, x, y, dist)
        cluster_id[y] = n + k
        for z in range(x):  # a guess, corrected lazily when the candidate reaches the top
            if size[z] > 0 and neighbor[z] == x:
                neighbor[z] = y
        for z in range(y):
            if size[z] == 0:
                continue
            d = D[_at(n, z, y)]
            if d < min_dist[z]:
                neighbor[z] = y
                min_dist[z] = d
                _heap_change(values, key_at, index_of, hsize, z, d)
        if y < n - 1:
            z, d = _nearest_above(n, D, size, y)
            if z != -1:
                neighbor[y] = z
                min_dist[y] = d
                _heap_change(values, key_at, index_of, hsize, y, d)
    return Z


@numba.njit(cache=True)
def linkage(dists, n, method):
    """scipy's ``linkage(dists, method)`` matrix for a condensed, finite ``dists``."""
    if method == SINGLE:
        return _mst_single(dists, n)
    if method == CENTROID or method == MEDIAN:
        return _fast_linkage(dists, n, method)
    return _nn_chain(dists, n, method)


@numba.njit(cache=True)
def _leaves(Z, n, flip):
    """Leaves left to right (scipy's ``leaves_list``), the children of row i swapped where
    ``flip[i]``."""
    order = np.empty(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    stack[0] = 2 * n - 2
    top, out = 1, 0
    while top:
        top -= 1
        node = stack[top]
        if node < n:
            order[out] = node
            out += 1
            continue
        left, right = int(Z[node - n, 0]), int(Z[node - n, 1])
        if flip[node - n]:
            left, right = right, left
        stack[top] = right
        stack[top + 1] = left
        top += 2
    return order


@numba.njit(cache=True)
def _quicksort(vals, idx, size, stack):
    """Sort ``vals[:size]`` carrying ``idx``: scikit-learn's ``_simultaneous_sort`` that scipy
    uses (median of three, Lomuto partition; small cases by compare-and-swap). Ties keep
    the order this particular algorithm leaves them in, which decides scipy's leaf order.
    ``stack`` holds pending (start, size) pairs; they are disjoint, >= 2 long, so n suffice."""
    stack[0, 0], stack[0, 1] = 0, size
    top = 1
    while top:
        top -= 1
        lo, s = stack[top, 0], stack[top, 1]
        if s <= 1:
            continue
        hi = lo + s - 1
        if s == 2:
            if vals[lo] > vals[lo + 1]:
                _pair_swap(vals, idx, lo, lo + 1)
            continue
        if s == 3:
            if vals[lo] > vals[lo + 1]:
                _pair_swap(vals, idx, lo, lo + 1)
            if vals[lo + 1] > vals[lo + 2]:
                _pair_swap(vals, idx, lo + 1, lo + 2)
                if vals[lo] > vals[lo + 1]:
                    _pair_swap(vals, idx, lo, lo + 1)
            continue
        mid = lo + s // 2
        if vals[lo] > vals[hi]:
            _pair_swap(vals, idx, lo, hi)
        if vals[hi] > vals[mid]:
            _pair_swap(vals, idx, hi, mid)
            if vals[lo] > vals[hi]:
                _pair_swap(vals, idx, lo, hi)
        pivot = vals[hi]
        store = lo
        for i in range(lo, hi):
            if vals[i] < pivot:
                _pair_swap(vals, idx, i, store)
                store += 1
        _pair_swap(vals, idx, store, hi)
        p = store - lo
        # the two sides are disjoint, so their order on the stack does not change the result
        if p > 1:
            stack[top, 0], stack[top, 1] = lo, p
            top += 1
        if p + 2 < s:
            stack[top, 0], stack[top, 1] = store + 1, s - p - 1
            top += 1


@numba.njit(cache=True)
def _pair_swap(vals, idx, i, j):
    vals[i], vals[j] = vals[j], vals[i]
    idx[i], idx[j] = idx[j], idx[i]


@numba.njit(cache=True)
def _must_swap(sZ, sD, ranges, n):
    """Bar-Joseph et al.'s dynamic programme on the tree relabelled to leaf positions:
    ``M[u, w]`` the least sum of neighbour distances of an order of a cluster starting at
    leaf u and ending at w; returns, per row, whether its children must be swapped."""
    M = np.zeros((n, n), dtype=np.float32)
    status = np.zeros((n, n, 2), dtype=np.int64)
    must = np.zeros(n - 1, dtype=np.bool_)
    u_cl, m_cl = np.empty(2, dtype=np.int64), np.empty(2, dtype=np.int64)
    w_cl, k_cl = np.empty(2, dtype=np.int64), np.empty(2, dtype=np.int64)
    m_vals, k_vals = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    m_idx, k_idx = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    stack = np.empty((n, 2), dtype=np.int64)
    for i in range(n - 1):
        v_l, v_r = sZ[i, 0], sZ[i, 1]
        # u at the outer end of the left child, m at its inner end: from either grandchild
        if v_l < n:
            n_u = 1
            u_cl[0] = m_cl[0] = v_l
        else:
            n_u = 2
            u_cl[0], m_cl[0] = sZ[v_l - n, 0], sZ[v_l - n, 1]
            u_cl[1], m_cl[1] = sZ[v_l - n, 1], sZ[v_l - n, 0]
        if v_r < n:
            n_w = 1
            w_cl[0] = k_cl[0] = v_r
        else:
            n_w = 2
            w_cl[0], k_cl[0] = sZ[v_r - n, 1], sZ[v_r - n, 0]
            w_cl[1], k_cl[1] = sZ[v_r - n, 0], sZ[v_r - n, 1]
        for swap_l in range(n_u):
            for swap_r in range(n_w):
                u_min, u_max = ranges[u_cl[swap_l], 0], ranges[u_cl[swap_l], 1]
                m_min, m_max = ranges[m_cl[swap_l], 0], ranges[m_cl[swap_l], 1]
                w_min, w_max = ranges[w_cl[swap_r], 0], ranges[w_cl[swap_r], 1]
                k_min, k_max = ranges[k_cl[swap_r], 0], ranges[k_cl[swap_r], 1]
                min_km = BIG
                for m in range(m_min, m_max):
                    for k in range(k_min, k_max):
                        if sD[m, k] < min_km:
                            min_km = np.float32(sD[m, k])
                n_m, n_k = m_max - m_min, k_max - k_min
                for u in range(u_min, u_max):
                    for j in range(n_m):
                        m_vals[j] = M[m_min + j, u]
                        m_idx[j] = m_min + j
                    _quicksort(m_vals, m_idx, n_m, stack)
                    for w in range(w_min, w_max):
                        for j in range(n_k):
                            k_vals[j] = M[k_min + j, w]
                            k_idx[j] = k_min + j
                        _quicksort(k_vals, k_idx, n_k, stack)
                        # float32 sums as scipy's (float + float) + float; the candidate's
                        # float32 sum plus the float64 distance, rounded to float32
                        best = BIG
                        for mi in range(n_m):
                            m = m_idx[mi]
                            if M[u, m] + M[w, k_idx[0]] + min_km >= best:
                                break
                            for ki in range(n_k):
                                k = k_idx[ki]
                                if M[u, m] + M[w, k] + min_km >= best:
                                    break
                                cost = np.float32(np.float64(M[u, m] + M[w, k]) + sD[m, k])
                                if cost < best:
                                    best = cost
                        M[u, w] = best
                        M[w, u] = best
                        status[u, w, 0] = status[w, u, 0] = swap_l
                        status[u, w, 1] = status[w, u, 1] = swap_r
        best = BIG
        best_u, best_w = 0, 0
        for u in range(ranges[v_l, 0], ranges[v_l, 1]):
            for w in range(ranges[v_r, 0], ranges[v_r, 1]):
                if M[u, w] < best:
                    best = M[u, w]
                    best_u, best_w = u, w
        if v_l >= n:
            must[v_l - n] = status[best_u, best_w, 0] != 0
        if v_r >= n:
            must[v_r - n] = status[best_u, best_w, 1] != 0
    return must


@numba.njit(cache=True)
def _optimal_flips(Z, dists, n, order):
    """Per row of ``Z``, whether optimal leaf ordering swaps its children (scipy's
    ``optimal_leaf_ordering``, given ``order`` = the unswapped leaves)."""
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    # leaves relabelled to their positions: every cluster is then a range of positions
    sZ = np.empty((n - 1, 2), dtype=np.int64)
    ranges = np.empty((2 * n - 1, 2), dtype=np.int64)
    for p in range(n):
        ranges[p, 0], ranges[p, 1] = p, p + 1
    for i in range(n - 1):
        for c in range(2):
            v = int(Z[i, c])
            sZ[i, c] = position[v] if v < n else v
        ranges[n + i, 0], ranges[n + i, 1] = ranges[sZ[i, 0], 0], ranges[sZ[i, 1], 1]
    sD = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a != b:
                sD[a, b] = dists[_at(n, order[a], order[b])]
    must = _must_swap(sZ, sD, ranges, n)
    # a row's children end up swapped when an odd number of it and its ancestors must swap;
    # a parent's row comes after its children's
    flip = np.zeros(n - 1, dtype=np.bool_)
    flip[n - 2] = must[n - 2]
    for i in range(n - 2, -1, -1):
        for c in range(2):
            v = int(Z[i, c])
            if v >= n:
                flip[v - n] = flip[i] != must[v - n]
    return flip


@numba.njit(cache=True)
def leaf_order(dists, n, method, optimal):
    """``leaves_list(linkage(dists, method, optimal_ordering=optimal))`` for ``n >= 2``."""
    Z = linkage(dists, n, method)
    unswapped = np.zeros(n - 1, dtype=np.bool_)
    order = _leaves(Z, n, unswapped)
    if not optimal:
        return order
    return _leaves(Z, n, _optimal_flips(Z, dists, n, order))


@numba.njit(cache=True)
def recursive_bisection(cov, order):
    """Split ``order`` in halves, top-down; each half's inverse-variance portfolio has
    variance ``V``, and the halves get ``1 - V_left / (V_left + V_right)`` and the rest of
    their parent's weight (Lopez de Prado 2016, "Recursive bisection")."""
    m = order.size
    # in leaf order every cluster is a contiguous block
    C = np.empty((m, m))
    for a in range(m):
        for b in range(m):
            C[a, b] = cov[order[a], order[b]]
    inv_var = 1.0 / np.diag(C)
    w = np.ones(m)
    stack = np.empty((m, 2), dtype=np.int64)
    stack[0, 0], stack[0, 1] = 0, m
    top = 1
    while top:
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        v_left = _ivp_variance(C, inv_var, lo, mid)
        v_right = _ivp_variance(C, inv_var, mid, hi)
        alpha = 1.0 - v_left / (v_left + v_right)
        w[lo:mid] *= alpha
        w[mid:hi] *= 1.0 - alpha
        stack[top, 0], stack[top, 1] = lo, mid
        stack[top + 1, 0], stack[top + 1, 1] = mid, hi
        top += 2
    out = np.empty(m)
    out[order] = w
    return out


@numba.njit(cache=True)
def _ivp_variance(C, inv_var, a, b):
    """Variance ``ivp' C ivp`` of the inverse-variance portfolio ``ivp`` of the block ``[a, b)``."""
    total = 0.0
    for i in range(a, b):
        total += inv_var[i]
    v = 0.0
    for j in range(a, b):
        column = 0.0
        for i in range(a, b):
            column += inv_var[i] / total * C[i, j]
        v += column * (inv_var[j] / total)
    return v


@numba.njit(cache=True)
def hrp_weights(S, cov, method, optimal):
    """HRP weights: clusters from the correlation of the covariance ``S``, the bisection with
    ``cov`` (both m x m, m >= 2)."""
    m = S.shape[0]
    return recursive_bisection(cov, leaf_order(distances(S), m, method, optimal))
