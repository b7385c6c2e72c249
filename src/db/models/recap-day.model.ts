// A merchant's payment totals of one finished local day, kept so the daily recap's 7-day chart
// reads six stored days instead of a week of orders. _id `<merchantId>:<date>`; inserted once
// (a finished day's payments do not change) and pruned after RECAP_DAYS_KEEP days. The zone is
// kept because a day's bounds depend on it: totals of another zone are not reused.
import mongoose, { Schema } from 'mongoose';

const RecapDaySchema = new Schema(
  {
    _id: { type: String, required: true },
    merchantId: { type: String, required: true },
    date: { type: String, required: true },
    timeZone: { type: String, required: true },
    /** Payments that day by currency. */
    paid: [{ _id: false, currency: String, count: Number, totalMinor: Number }],
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
// The chart's read of a group of merchants' days, and the pruning by date.
RecapDaySchema.index({ merchantId: 1, date: 1 });
RecapDaySchema.index({ date: 1 });

export interface RecapDayDoc {
  _id: string;
  merchantId: string;
  date: string;
  timeZone: string;
  paid: Array<{ currency: string; count: number; totalMinor: number }>;
  at: Date;
}

export const RecapDay = mongoose.model('RecapDay', RecapDaySchema, 'recap_days');
export const recapDayId = (merchantId: string, date: string): string => `${merchantId}:${date}`;
