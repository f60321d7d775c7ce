"""SQLAlchemy 2.0 models. Imports nothing else of the platform's."""
from models.account import Account, ApiKey
from models.account_analysis import AccountAnalysis
from models.ai_draft import AiDraft
from models.attribution_answer import AttributionAnswer
from models.base import Base, utcnow
from models.broadcast import Broadcast
from models.enrollment import Enrollment
from models.event import Event, EventKey
from models.event_subscription import EventDelivery, EventSubscription
from models.experiment import ExperimentDecision, ExperimentHoldout
from models.flow import StepFlowRollup, StepTransition
from models.inbound_event import InboundEvent
from models.job import Job, JobPart
from models.message import Message
from models.ml import MlModel, SubscriberScore
from models.provider import Provider
from models.retention import RetentionProgress
from models.rollup import RollupFirst, RollupWatermark, SequenceRollup
from models.sequence import Sequence, Step
from models.segment import Segment
from models.sequence_analysis import SequenceAnalysis
from models.subscriber import Subscriber
from models.suppression import Suppression
from models.template import Template
from models.topic import Topic, TopicSubscription
from models.warming import WarmingAdjustment, WarmingDay, WarmingPlan
from models.webhook_delivery import WebhookDelivery
from models.worker_heartbeat import WorkerHeartbeat

__all__ = [
    "Account", "AccountAnalysis", "AiDraft", "ApiKey", "AttributionAnswer", "Base", "Broadcast", "Enrollment", "Event",
    "EventKey", "EventDelivery", "EventSubscription", "ExperimentDecision",
    "InboundEvent", "Job", "JobPart", "Message", "MlModel", "Provider", "RetentionProgress", "RollupFirst",
    "RollupWatermark", "Segment",
    "Sequence", "SequenceAnalysis", "SequenceRollup", "Step",
    "StepFlowRollup", "StepTransition", "Subscriber", "SubscriberScore", "Suppression", "Template", "Topic",
    "TopicSubscription", "WarmingAdjustment",
    "WarmingDay", "WarmingPlan", "WebhookDelivery", "WorkerHeartbeat",
    "utcnow",
]
