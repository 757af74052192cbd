// The largest and smallest of many values. Math.max(...values) passes every value as an
// argument: past ~120k of them (the notes of a long many-part file) it throws "Maximum call
// stack size exceeded", so the MIDI code reduces instead.
export const maxOf = (values) => values.reduce((a, b) => (b > a ? b : a), -Infinity);
export const minOf = (values) => values.reduce((a, b) => (b < a ? b : a), Infinity);
