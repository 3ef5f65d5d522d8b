package postgres

import (
	"fmt"
	"testing"
	"time"
)

// pagePtrs hands out values of their own past its arrays' first capacity:
// what was taken earlier keeps its value when an array is replaced, and no
// two share a slot (a key of a page written to must not change another).
func TestPagePtrsValuesAreTheirOwn(t *testing.T) {
	var pp pagePtrs
	const n = 50
	var (
		strs  []*string
		times []*time.Time
		nums  []*int64
	)
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := range n {
		strs = append(strs, pp.str(fmt.Sprint("ip", i)))
		times = append(times, pp.time(base.Add(time.Duration(i)*time.Second)))
		nums = append(nums, pp.num(int64(i)))
	}
	for i := range n {
		if want := fmt.Sprint("ip", i); *strs[i] != want {
			t.Fatalf("str %d: %q, want %q", i, *strs[i], want)
		}
		if want := base.Add(time.Duration(i) * time.Second); !times[i].Equal(want) {
			t.Fatalf("time %d: %v, want %v", i, *times[i], want)
		}
		if *nums[i] != int64(i) {
			t.Fatalf("num %d: %d", i, *nums[i])
		}
	}
	*strs[0], *nums[0] = "changed", -1
	if *strs[1] != "ip1" || *nums[1] != 1 {
		t.Fatal("writing one value changed the next")
	}
}
