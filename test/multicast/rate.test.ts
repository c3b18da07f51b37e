/**
 * Sender rate adaptation (core/multicast/rate.ts) and the pacer's rate change (pacer.ts):
 * most receivers losing lowers the rate, one lossy receiver does not, random link loss
 * (~1%) neither; lowerings stop at the floor; low loss raises it back, never above the
 * --rate; a lowering starts from the achieved rate when lower; a tick forgets what it used. The hub's wiring is run by the netns test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_TUNING, RateControl } from '../../core/multicast/rate.ts';
import { TokenBucket } from '../../core/multicast/pacer.ts';

const MAX = 50e6; // 400 Mbit/s
const hear = (c: RateControl, losses: number[]) => losses.forEach((loss, i) => c.observe(`node${i + 1}`, loss));

test('rate: most receivers losing lowers the rate; one lossy receiver or ~1% random loss does not', () => {
  const c = new RateControl(MAX);
  assert.is(c.tick(), null, 'nothing heard: unchanged');
  hear(c, [0.01, 0.012, 0.009, 0.011, 0.01, 0.013, 0.01, 0.9]);
  assert.is(c.tick(), null, 'one slow node and 1% elsewhere: unchanged (already at --rate)');
  assert.is(c.rate, MAX);
  hear(c, [0.2, 0.15, 0.12, 0.1, 0.0, 0.0, 0.0, 0.0]);
  assert.is(c.tick(), MAX * DEFAULT_TUNING.decrease, 'half of them lost 10% or more: lowered');
  assert.is(c.changes.length, 1);
  assert.is(c.changes[0].loss, 0.1);
  assert.is(c.changes[0].receivers, 8);
  assert.is(c.tick(), null, 'a tick forgets what it used: nothing new heard');
});

test('rate: lowerings stop at the floor; low loss raises it back by steps, never above --rate', () => {
  const c = new RateControl(MAX);
  for (let i = 0; i < 40; i++) {
    hear(c, [0.5, 0.5]);
    c.tick();
  }
  assert.is(c.rate, MAX * DEFAULT_TUNING.floor);
  assert.is(c.min, MAX * DEFAULT_TUNING.floor);
  hear(c, [0.03, 0.03]);
  assert.is(c.tick(), null, 'between low and high: held');
  let raises = 0;
  while (c.rate < MAX && raises < 100) {
    hear(c, [0.001, 0]);
    assert.ok(c.tick()! > 0);
    raises++;
  }
  assert.is(c.rate, MAX);
  assert.ok(raises > 5 && raises <= 12, `${raises} raises from the floor`);
  hear(c, [0, 0]);
  assert.is(c.tick(), null, 'at --rate: no higher');
  assert.ok(c.changes.length <= 50, 'the list of changes is bounded');
});

test('rate: a lowering starts from the rate the sender achieved when that was lower', () => {
  const c = new RateControl(MAX);
  hear(c, [0.1, 0.1]);
  assert.is(c.tick(MAX / 5), MAX / 2, 'a busy sender reached a fifth of --rate: halved at most, at once');
  hear(c, [0.1, 0.1]);
  assert.is(c.tick(MAX / 5), MAX / 4);
  hear(c, [0.1, 0.1]);
  const lowered = (MAX / 5) * DEFAULT_TUNING.decrease;
  assert.is(c.tick(MAX / 5), lowered, 'then from what it achieved');
  hear(c, [0.1, 0.1]);
  assert.is(c.tick(MAX), lowered * DEFAULT_TUNING.decrease, 'a higher achieved rate does not raise it');
  hear(c, [0, 0]);
  assert.is(c.tick(1), lowered * DEFAULT_TUNING.decrease + MAX * DEFAULT_TUNING.step, 'raises ignore it');
});

test('rate: a forgotten receiver no longer counts; nonsense losses are clamped or ignored', () => {
  const c = new RateControl(MAX);
  hear(c, [0.5, 0.5, 0]);
  c.forget('node1');
  c.forget('node2');
  assert.is(c.tick(), null, 'the one left lost nothing (at --rate already)');
  c.observe('node1', Number.NaN);
  assert.is(c.tick(), null);
  c.observe('node1', 7);
  assert.is(c.tick(), MAX * DEFAULT_TUNING.decrease);
  assert.is(c.changes.at(-1)!.loss, 1);
});

test('pacer: the rate can change while it runs; a bad one is refused', () => {
  const b = new TokenBucket(MAX);
  assert.is(b.rate, MAX);
  b.setRate(MAX / 4);
  assert.is(b.rate, MAX / 4);
  assert.throws(() => b.setRate(0), /positive/);
  assert.throws(() => b.setRate(Number.POSITIVE_INFINITY), /positive/);
});

test.run();
