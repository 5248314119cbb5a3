package models

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ForestConfig sets how an isolation forest is grown. The zero value gives the defaults.
type ForestConfig struct {
	// Trees is the number of trees (default 100).
	Trees int
	// SampleSize is the number of rows each tree is grown on (default min(256, rows)).
	SampleSize int
	// Seed fixes the sampling and the splits.
	Seed uint64
}

func (c *ForestConfig) validate(rows int) error {
	if c.Trees == 0 {
		c.Trees = 100
	}
	if c.SampleSize == 0 {
		c.SampleSize = min(256, rows)
	}
	if c.Trees < 1 || c.Trees > 10000 {
		return fmt.Errorf("models: %d trees, want 1..10000", c.Trees)
	}
	if c.SampleSize < 2 || c.SampleSize > rows {
		return fmt.Errorf("%w: isolation forest needs a sample of 2..%d rows, got %d", ErrBadData, rows, c.SampleSize)
	}
	return nil
}

// IsolationForest is Liu, Ting and Zhou's detector (ICDM 2008): random axis-aligned splits
// isolate an unusual point in fewer steps than a usual one. Unlike the autoencoder it assumes
// nothing smooth about the data, which is why the two are worth combining.
//
// Score allocates nothing and an IsolationForest is safe for concurrent use.
type IsolationForest struct {
	dim   int
	roots []int32
	nodes []forestNode
	norm  float64 // c(SampleSize), the mean path length of an unsuccessful search
	// The trees again as complete binary trees of depth levels, for forests whose deepest
	// tree is minCompleteDepth to maxCompleteDepth deep (see complete); levels is 0 for the
	// others, which Score walks node by node.
	levels int
	feat   []int32   // per tree, 2^levels - 1 splits in heap order: their features...
	thresh []float64 // ...and thresholds
	leaf   []float64 // per tree, 2^levels leaves: depth + c(size) of the leaf a walk ends in
}

// forestNode is a node of a grown tree as Score walks it: a split (feature >= 0) or a leaf
// (feature = -1). Nodes are stored depth first, so a split's left child is the next node and
// only the right one is kept. A split's value is its threshold; a leaf's is what a walk ending
// there adds to the total, depth + c(size) of the rows it holds, computed once (with the same
// float operations) rather than on every Score. Sixteen bytes a node keep a 100-tree forest
// within the first-level cache.
type forestNode struct {
	feature int32
	right   int32
	value   float64
}

// grownNode is a node of a tree while it is grown: a split (feature >= 0) or a leaf
// (feature = -1) holding size rows.
type grownNode struct {
	feature     int32
	left, right int32
	split, size float64
}

// FitIsolationForest grows a forest on rows, which must all have the same length and finite
// entries.
func FitIsolationForest(rows [][]float64, cfg ForestConfig) (*IsolationForest, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrBadData)
	}
	if err := cfg.validate(len(rows)); err != nil {
		return nil, err
	}
	dim := len(rows[0])
	for i, r := range rows {
		if len(r) != dim {
			return nil, fmt.Errorf("%w: row %d has %d entries, want %d", ErrBadData, i, len(r), dim)
		}
		for j, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%w: row %d entry %d is %v", ErrBadData, i, j, v)
			}
		}
	}
	f := &IsolationForest{dim: dim, norm: avgPathLength(float64(cfg.SampleSize))}
	f.store(growTrees(rows, cfg))
	return f, nil
}

// grower holds the trees of a forest while they are grown.
type grower struct {
	roots []int32
	nodes []grownNode
}

// growTrees grows the trees of a forest on rows, valid for cfg.
func growTrees(rows [][]float64, cfg ForestConfig) *grower {
	g := new(grower)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1f07e57))
	limit := int(math.Ceil(math.Log2(float64(cfg.SampleSize))))
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	for t := 0; t < cfg.Trees; t++ {
		// A partial Fisher-Yates shuffle draws the sample without replacement.
		for i := 0; i < cfg.SampleSize; i++ {
			j := i + rng.IntN(len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		sample := append([]int(nil), idx[:cfg.SampleSize]...)
		g.roots = append(g.roots, g.grow(rows, len(rows[0]), sample, 0, limit, rng))
	}
	return g
}

// grow builds the subtree isolating sample and returns its node index.
func (g *grower) grow(rows [][]float64, dim int, sample []int, depth, limit int, rng *rand.Rand) int32 {
	id := int32(len(g.nodes))
	g.nodes = append(g.nodes, grownNode{feature: -1, size: float64(len(sample))})
	if depth >= limit || len(sample) <= 1 {
		return id
	}
	// Pick a feature that still varies in the sample; give up after a few tries.
	for try := 0; try < 2*dim; try++ {
		j := rng.IntN(dim)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, i := range sample {
			lo, hi = min(lo, rows[i][j]), max(hi, rows[i][j])
		}
		if !(hi > lo) {
			continue
		}
		split := lo + rng.Float64()*(hi-lo)
		var left, right []int
		for _, i := range sample {
			if rows[i][j] < split {
				left = append(left, i)
			} else {
				right = append(right, i)
			}
		}
		l := g.grow(rows, dim, left, depth+1, limit, rng)
		r := g.grow(rows, dim, right, depth+1, limit, rng)
		g.nodes[id] = grownNode{feature: int32(j), left: l, right: r, split: split}
		return id
	}
	return id
}

// store keeps the grown trees as Score walks them (see forestNode).
func (f *IsolationForest) store(g *grower) {
	f.roots = g.roots
	f.nodes = make([]forestNode, len(g.nodes))
	// keep stores node i, at depth d, and the subtree below it.
	var keep func(i int32, d int)
	keep = func(i int32, d int) {
		n := g.nodes[i]
		if n.feature < 0 {
			f.nodes[i] = forestNode{feature: -1, value: float64(d) + avgPathLength(n.size)}
			return
		}
		// grow adds a split's left subtree right after it.
		f.nodes[i] = forestNode{feature: n.feature, right: n.right, value: n.split}
		keep(n.left, d+1)
		keep(n.right, d+1)
	}
	for _, root := range g.roots {
		keep(root, 0)
	}
	f.complete(g)
}

// Forests kept in the complete layout: trees of four to six levels, as an enrolment of 9 to 64
// rows grows. Walking such trees node by node, the processor mispredicts which way about one
// split in two (a user's enrolment of 21 overlapping summaries: the forest was a quarter of
// scoring a window); shallower trees, of a few rows, it predicts well enough that the fixed
// walk of the complete layout is no faster, and deeper ones would take up to 2^levels leaves
// per tree whatever their size.
const (
	minCompleteDepth = 4
	maxCompleteDepth = 6
)

// complete lays the trees out as complete binary trees of the depth of the deepest, so that
// Score walks every tree the same number of levels without a branch on the data: a split's
// children are 2i+1 (x below the threshold) and 2i+2. A leaf grown above the last level is
// repeated at every leaf below its place, and the splits below it, which cannot change where a
// walk ends, test feature 0 against 0. Each leaf holds depth + c(size), the sum the node walk
// adds for it, computed once here with the same float operations.
func (f *IsolationForest) complete(g *grower) {
	levels := 0
	var depth func(n int32) int
	depth = func(n int32) int {
		if node := g.nodes[n]; node.feature >= 0 {
			return 1 + max(depth(node.left), depth(node.right))
		}
		return 0
	}
	for _, root := range g.roots {
		if levels = max(levels, depth(root)); levels > maxCompleteDepth {
			return
		}
	}
	if levels < minCompleteDepth {
		return
	}
	splits, leaves := 1<<levels-1, 1<<levels
	f.levels = levels
	f.feat = make([]int32, splits*len(g.roots))
	f.thresh = make([]float64, splits*len(g.roots))
	f.leaf = make([]float64, leaves*len(g.roots))
	// place puts node n, at depth d, at heap index i of tree t.
	var place func(t int, n int32, i, d int)
	place = func(t int, n int32, i, d int) {
		node := g.nodes[n]
		if node.feature >= 0 {
			f.feat[t*splits+i], f.thresh[t*splits+i] = node.feature, node.split
			place(t, node.left, 2*i+1, d+1)
			place(t, node.right, 2*i+2, d+1)
			return
		}
		lo, hi := i, i // the leaves below i, at the last level
		for range levels - d {
			lo, hi = 2*lo+1, 2*hi+2
		}
		v := float64(d) + avgPathLength(node.size)
		for j := lo; j <= hi; j++ {
			f.leaf[t*leaves+j-splits] = v
		}
	}
	for t, root := range g.roots {
		place(t, root, 0, 0)
	}
}

// Dim is the length of the rows the forest scores.
func (f *IsolationForest) Dim() int { return f.dim }

// Score returns the anomaly score of x in (0, 1): about 0.5 or less for usual rows, close to 1
// for rows that are easy to isolate. x must have Dim entries.
func (f *IsolationForest) Score(x []float64) float64 {
	if f.levels > 0 {
		return f.scoreComplete(x)
	}
	var total float64
	nodes := f.nodes
	for _, root := range f.roots {
		n := root
		for {
			node := &nodes[n]
			if node.feature < 0 {
				total += node.value
				break
			}
			if x[node.feature] < node.value {
				n++
			} else {
				n = node.right
			}
		}
	}
	return math.Exp2(-total / float64(len(f.roots)) / f.norm)
}

// scoreComplete is Score over the complete layout. The walks of the trees do not depend on one
// another and none branches on the data, so the processor overlaps them.
func (f *IsolationForest) scoreComplete(x []float64) float64 {
	var total float64
	levels := f.levels
	splits, leaves := 1<<levels-1, 1<<levels
	for t := range f.roots {
		feat := f.feat[t*splits : t*splits+splits]
		thresh := f.thresh[t*splits : t*splits+splits]
		i := 0
		for range levels {
			i = 2*i + 2 - below(x[feat[i]], thresh[i])
		}
		total += f.leaf[t*leaves+i-splits]
	}
	return math.Exp2(-total / float64(len(f.roots)) / f.norm)
}

// below is 1 when v < t, else 0 (NaN included), without a branch.
func below(v, t float64) int {
	var b int
	if v < t {
		b = 1
	}
	return b
}

// avgPathLength is c(n), the average path length of an unsuccessful search in a binary search
// tree of n points, by which isolation depths are normalised.
func avgPathLength(n float64) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	return 2*(math.Log(n-1)+0.5772156649015329) - 2*(n-1)/n
}
