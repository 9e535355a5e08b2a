/** Types of parse-prometheus-text-format 1.1.1 (it ships none): the prom2json shape. */
declare module "parse-prometheus-text-format" {
  export interface Sample {
    value?: string;
    labels?: Record<string, string>;
  }
  export interface HistogramSample {
    buckets: Record<string, string>;
    count: string;
    sum: string;
    labels?: Record<string, string>;
  }
  export interface SummarySample {
    quantiles: Record<string, string>;
    count: string;
    sum: string;
    labels?: Record<string, string>;
  }
  export interface MetricFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: (Sample | HistogramSample | SummarySample)[];
  }
  /** Parses the Prometheus text exposition format; throws on an invalid line. */
  export default function parse(text: string): MetricFamily[];
}
