import RoasCore

/// An `AlertEvaluator` writing its alerts as NDJSON lines to a sink.
public final class AlertOutput {
    public private(set) var evaluator: AlertEvaluator
    public let sink: ByteSink

    public init(evaluator: AlertEvaluator, sink: ByteSink) {
        self.evaluator = evaluator
        self.sink = sink
    }

    public func observe(_ row: Row) throws {
        for alert in self.evaluator.observe(row) {
            try self.sink.writeLine { alert.appendJSON(to: &$0) }
        }
    }
}
