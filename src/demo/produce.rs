//! Producing to Kafka. tidemark itself only consumes; the demo, the bench and the tests write the
//! upstream's changes, and all of them send the same way.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};

/// Sends one record to `topic` [`partition`], waiting while librdkafka's local queue is full
/// (its back-pressure) instead of failing; any other error is returned.
pub fn send_waiting<C: ProducerContext<DeliveryOpaque = ()> + 'static>(
    producer: &ThreadedProducer<C>,
    topic: &str,
    partition: i32,
    payload: &[u8],
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::<(), [u8]>::to(topic).partition(partition).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
