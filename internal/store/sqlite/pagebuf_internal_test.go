package sqlite

import (
	"fmt"
	"testing"
	"time"
)

// A pageBuf hands out values of their own past its arrays' first capacity:
// what was taken earlier keeps its value when an array is replaced, and no
// two keys, strings or times share a slot (a key of a page written to must
// not change another).
func TestPageBufValuesAreTheirOwn(t *testing.T) {
	for _, pb := range []*pageBuf{nil, newPageBuf(1), newPageBuf(3)} {
		const n = 50
		var (
			keys  = make(map[any]bool)
			strs  []*string
			times []*time.Time
		)
		base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		for i := range n {
			k := pb.key()
			if keys[k] {
				t.Fatalf("key %d: a slot handed out twice", i)
			}
			keys[k] = true
			k.ID = fmt.Sprint(i)
			strs = append(strs, pb.str(fmt.Sprint("ip", i)))
			times = append(times, pb.time(base.Add(time.Duration(i)*time.Second)))
		}
		for i, s := range strs {
			if want := fmt.Sprint("ip", i); *s != want {
				t.Fatalf("str %d: %q, want %q", i, *s, want)
			}
			if want := base.Add(time.Duration(i) * time.Second); !times[i].Equal(want) {
				t.Fatalf("time %d: %v, want %v", i, *times[i], want)
			}
		}
		*strs[0] = "changed"
		if *strs[1] != "ip1" {
			t.Fatal("writing one string changed the next")
		}
		if len(keys) != n {
			t.Fatalf("%d distinct keys, want %d", len(keys), n)
		}
	}
}
