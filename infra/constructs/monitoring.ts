import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  DRIFT_ALERT_PSI,
  DRIFT_FUNCTION,
  DRIFT_METRIC_NAME,
  DRIFT_SETTINGS,
} from '../../lib/capture/drift.ts';
import { METRICS_NAMESPACE } from './tlearn-function.ts';

/** The application metrics the handlers emit (Powertools, namespace `Tlearn`), as the dashboard shows them. */
export const APP_METRICS = {
  imagesExtracted: 'ImagesExtracted',
  imagesFailed: 'ImagesFailed',
  extractionMs: 'ExtractionMs',
  predictions: 'Predictions',
  predictionLatencyMs: 'PredictionLatencyMs',
  /** Holdout accuracy of each training, percent (train-head). */
  trainingAccuracy: 'TrainingAccuracy',
  trainingsStarted: 'TrainingsStarted',
  /** Largest PSI of the predicted-label mix against a served version's held-out set (drift-metric). */
  predictionDriftPsi: DRIFT_METRIC_NAME,
} as const;

/** The scheduled drift measurement (lib/capture/drift.ts) and its alarm. */
export interface DriftMonitoring {
  /** The function that measures drift and publishes {@link DRIFT_METRIC_NAME} (functions/drift-metric). */
  readonly function: lambda.IFunction;
  /** How often it runs; also the alarm's period. @default Duration.minutes(DRIFT_SETTINGS.everyMinutes) */
  readonly every?: Duration;
  /** PSI above which the alarm fires. @default DRIFT_ALERT_PSI (what the API answers as drift.threshold) */
  readonly threshold?: number;
}

export interface MonitoredQueue {
  readonly name: string;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /**
   * A function drains the dead-letter queue (infra/constructs/dead-letter-consumer.ts), so it is
   * almost never visibly non-empty: the alarm counts messages received from it instead. @default false
   */
  readonly deadLettersConsumed?: boolean;
}

export interface MonitoringProps {
  /** Queues whose dead-letter queues must stay empty. */
  readonly queues: readonly MonitoredQueue[];
  /** Functions whose errors raise an alarm, by short name. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  readonly stateMachine: sfn.IStateMachine;
  readonly api: apigw.RestApi;
  /** What alarms do when they fire (e.g. an SNS action). @default - none: alarms show on the console */
  readonly alarmActions?: readonly cw.IAlarmAction[];
  /** Period of the alarms' metrics. @default Duration.minutes(5) */
  readonly period?: Duration;
  /** Prediction drift: a schedule runs the function, an alarm watches its metric. @default - none */
  readonly drift?: DriftMonitoring;
}

/**
 * Alarms on what needs a human (a message in a DLQ, function errors, failed trainings, API 5xx)
 * and a dashboard with what users watch: extraction progress and failures, prediction volume and
 * latency, training accuracy, queue depths, API latency.
 */
export class Monitoring extends Construct {
  readonly alarms: cw.Alarm[] = [];
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(5);
    if (period.toSeconds() < 60 || period.toSeconds() % 60 !== 0) {
      throw new Error(`${id}: period must be a whole number of minutes (got ${period.toSeconds()} s)`);
    }
    const alarm = (alarmId: string, metric: cw.IMetric, description: string, threshold = 0): cw.Alarm => {
      const a = new cw.Alarm(this, alarmId, {
        metric,
        threshold,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      for (const action of props.alarmActions ?? []) a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };

    for (const q of props.queues) {
      alarm(
        `${pascal(q.name)}DeadLetters`,
        q.deadLettersConsumed
          ? q.deadLetterQueue.metricNumberOfMessagesReceived({ period, statistic: cw.Stats.SUM })
          : q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period,
              statistic: cw.Stats.MAXIMUM,
            }),
        q.deadLettersConsumed
          ? `Messages reached the ${q.name} dead-letter queue (a crash, timeout or out of memory on the last receive); the dead-letters function records them as failures: see its log.`
          : `Messages in the ${q.name} dead-letter queue: they failed 5 times. Inspect them, fix the cause, then redrive.`,
      );
    }
    for (const [name, fn] of Object.entries(props.functions)) {
      alarm(
        `${pascal(name)}Errors`,
        fn.metricErrors({ period, statistic: cw.Stats.SUM }),
        `The ${name} function threw (see its log group).`,
      );
    }
    alarm(
      'TrainingFailed',
      props.stateMachine.metricFailed({ period, statistic: cw.Stats.SUM }),
      'A training execution failed; its Fail state names the cause (Step Functions console).',
    );
    alarm(
      'ApiServerErrors',
      props.api.metricServerError({ period, statistic: cw.Stats.SUM }),
      'The API answered 5xx (see the api function log group).',
    );

    const drift = props.drift ? this.driftAlarm(props.drift, alarm) : undefined;

    // SEARCH matches the metric whatever dimensions a handler adds (Powertools adds `service`).
    const app = (metricName: string, stat: string, label: string): cw.IMetric =>
      new cw.MathExpression({
        expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${metricName}"', '${stat}', ${period.toSeconds()})`,
        label,
        period,
        usingMetrics: {},
      });
    const widget = (title: string, left: cw.IMetric[], right: cw.IMetric[] = []): cw.GraphWidget =>
      new cw.GraphWidget({ title, left, right, width: 12, height: 6 });

    const queueDepths = props.queues.flatMap((q) => [
      q.queue.metricApproximateNumberOfMessagesVisible({ period, label: `${q.name} visible` }),
      q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, label: `${q.name} DLQ` }),
    ]);
    const queueAges = props.queues.map((q) =>
      q.queue.metricApproximateAgeOfOldestMessage({ period, label: `${q.name} oldest (s)` }),
    );

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          widget(
            'Extraction',
            [
              app(APP_METRICS.imagesExtracted, 'Sum', 'images extracted'),
              app(APP_METRICS.imagesFailed, 'Sum', 'images failed'),
            ],
            [app(APP_METRICS.extractionMs, 'p90', 'extraction ms p90')],
          ),
          widget('Queues', queueDepths, queueAges),
        ],
        [
          widget(
            'Predictions',
            [app(APP_METRICS.predictions, 'Sum', 'predictions')],
            [
              app(APP_METRICS.predictionLatencyMs, 'p50', 'latency ms p50'),
              app(APP_METRICS.predictionLatencyMs, 'p90', 'latency ms p90'),
            ],
          ),
          widget(
            'API',
            [
              props.api.metricLatency({ period, statistic: 'p50', label: 'latency p50' }),
              props.api.metricLatency({ period, statistic: 'p90', label: 'latency p90' }),
            ],
            [
              props.api.metricClientError({ period, label: '4xx' }),
              props.api.metricServerError({ period, label: '5xx' }),
            ],
          ),
        ],
        [
          widget(
            'Training',
            [
              app(APP_METRICS.trainingsStarted, 'Sum', 'started'),
              props.stateMachine.metricSucceeded({ period, label: 'succeeded' }),
              props.stateMachine.metricFailed({ period, label: 'failed' }),
            ],
            [app(APP_METRICS.trainingAccuracy, 'Maximum', 'holdout accuracy %')],
          ),
          widget(
            'Functions',
            Object.entries(props.functions).map(([name, fn]) =>
              fn.metricErrors({ period, statistic: cw.Stats.SUM, label: `${name} errors` }),
            ),
            Object.entries(props.functions).map(([name, fn]) =>
              fn.metricThrottles({ period, statistic: cw.Stats.SUM, label: `${name} throttles` }),
            ),
          ),
        ],
        ...(drift
          ? [
              [
                new cw.GraphWidget({
                  title: 'Prediction drift (largest PSI of the last day)',
                  left: [drift.metric.with({ label: 'largest PSI' })],
                  leftAnnotations: [{ value: drift.threshold, label: 'alarm threshold' }],
                  width: 24,
                  height: 6,
                }),
              ],
            ]
          : []),
        [new cw.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 })],
      ],
    });
  }

  /**
   * The drift measurement's schedule (an EventBridge rule: scheduled rules cost nothing) and the
   * alarm on its metric: the largest PSI of a run above the threshold, in one period.
   */
  private driftAlarm(
    props: DriftMonitoring,
    alarm: (id: string, metric: cw.IMetric, description: string, threshold?: number) => cw.Alarm,
  ): { metric: cw.Metric; threshold: number } {
    const every = props.every ?? Duration.minutes(DRIFT_SETTINGS.everyMinutes);
    const threshold = props.threshold ?? DRIFT_ALERT_PSI;
    if (!(threshold > 0)) throw new Error(`drift.threshold must be above 0 (got ${threshold})`);
    if (every.toSeconds() < 60 || every.toSeconds() % 60 !== 0) {
      throw new Error(`drift.every must be a whole number of minutes (got ${every.toSeconds()} s)`);
    }
    new events.Rule(this, 'DriftSchedule', {
      description: 'Measures prediction drift (functions/drift-metric) and publishes PredictionDriftPsi',
      schedule: events.Schedule.rate(every),
      targets: [new targets.LambdaFunction(props.function, { retryAttempts: 2 })],
    });
    // Powertools adds the function's name as the `service` dimension (functions/shared/powertools.ts).
    const metric = new cw.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: DRIFT_METRIC_NAME,
      dimensionsMap: { service: DRIFT_FUNCTION },
      statistic: cw.Stats.MAXIMUM,
      period: every,
    });
    alarm(
      'PredictionDrift',
      metric,
      `Predictions drifted: the predicted-label mix of the last ${DRIFT_SETTINGS.windowHours} h differs from a served model's held-out set (PSI above ${threshold}). GET /datasets/{d}/monitoring (or the console's Training tab) shows which dataset and version; the drift-metric log names it. Label captured predictions and retrain.`,
      threshold,
    );
    return { metric, threshold };
  }
}

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
