// A monitor's samples as a history ring and as async iterators: each iterator has its own queue,
// bounded by the history size, so a slow consumer loses the oldest samples and never blocks
// sampling.

/** A fixed-size history, oldest first. */
export class Ring<T> {
  private items: T[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}
  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
  get size(): number {
    return this.items.length;
  }
}

interface Reader<T> {
  queue: T[];
  waiter: ((r: IteratorResult<T>) => void) | null;
}

/** Every item pushed after an iterator was made, to that iterator, until end(). */
export class Streams<T> {
  private readonly readers = new Set<Reader<T>>();
  private ended = false;

  /** A new iterator; one made after end() is done at once (until reopen()). */
  iterator(): AsyncIterator<T> {
    const it: Reader<T> = { queue: [], waiter: null };
    if (!this.ended) this.readers.add(it);
    const done = (): IteratorResult<T> => ({ value: undefined, done: true });
    return {
      next: () => {
        const queued = it.queue.shift();
        if (queued) return Promise.resolve({ value: queued, done: false });
        if (!this.readers.has(it)) return Promise.resolve(done());
        return new Promise((resolve) => {
          it.waiter = resolve;
        });
      },
      return: () => {
        this.readers.delete(it);
        it.queue.length = 0;
        it.waiter?.(done());
        it.waiter = null;
        return Promise.resolve(done());
      },
    };
  }

  /** Gives `item` to every iterator, each queue kept to `bound` items. */
  push(item: T, bound: number): void {
    for (const it of this.readers) {
      if (it.waiter) {
        it.waiter({ value: item, done: false });
        it.waiter = null;
      } else {
        it.queue.push(item);
        if (it.queue.length > bound) it.queue.shift();
      }
    }
  }

  /** Ends every iteration; new iterators are done at once until reopen(). */
  end(): void {
    this.ended = true;
    for (const it of this.readers) {
      it.waiter?.({ value: undefined, done: true });
      it.waiter = null;
    }
    this.readers.clear();
  }

  reopen(): void {
    this.ended = false;
  }
}
